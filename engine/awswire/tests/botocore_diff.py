#!/usr/bin/env python3
"""Serialize a sample call of every operation of every botocore service with botocore
itself, so that `tests/botocore_models.rs` (test `same_requests_as_botocore`) can check that
orgop-awswire sends the same requests.

    pip install botocore            # the version whose data folder you point the test at
    python3 engine/awswire/tests/botocore_diff.py /tmp/botocore-requests.jsonl
    ORGOP_BOTOCORE_DATA=... ORGOP_BOTOCORE_REQUESTS=/tmp/botocore-requests.jsonl \
        cargo test -p orgop-awswire --test botocore_models -- --ignored

Parameters are generated from the input shape, every member set (lists of two, maps of two,
nesting cut at depth 4), with idempotency tokens given so that nothing is random.
"""

import json
import sys

import botocore.session
from botocore.serialize import create_serializer
from botocore.utils import percent_encode_sequence
from botocore.validate import ParamValidator

PRIORITY = ("json", "rest-json", "rest-xml", "query", "ec2")


def sample(shape, depth, name):
    t = shape.type_name
    if t == "structure":
        if getattr(shape, "is_document_type", False):
            return {"doc": [1, "x"]}
        if depth > 4:
            return {}
        out = {}
        for mname, m in shape.members.items():
            if m.serialization.get("eventstream") or m.serialization.get("eventpayload"):
                continue
            if m.type_name == "structure" and m.serialization.get("eventstream"):
                continue
            out[mname] = sample(m, depth + 1, mname)
            if getattr(shape, "is_tagged_union", False):
                break
        return out
    if t == "list":
        if depth > 4:
            return []
        return [sample(shape.member, depth + 1, name), sample(shape.member, depth + 1, name)]
    if t == "map":
        if depth > 4:
            return {}
        return {
            "k1": sample(shape.value, depth + 1, name),
            "k2": sample(shape.value, depth + 1, name),
        }
    if t == "string":
        if shape.enum:
            return shape.enum[0]
        return "v-" + name.lower()
    if t in ("integer", "long", "short", "byte"):
        return 7
    if t in ("float", "double"):
        return 1.5
    if t == "boolean":
        return True
    if t == "timestamp":
        return "2020-01-02T03:04:05Z"
    if t == "blob":
        return "blob data"
    return "v"


def main(out_path):
    session = botocore.session.get_session()
    n = 0
    with open(out_path, "w") as out:
        for svc in session.get_available_services():
            model = session.get_service_model(svc)
            protos = list(model.metadata.get("protocols") or []) + [model.metadata["protocol"]]
            proto = next((p for p in PRIORITY if p in protos), None)
            if proto is None:
                continue
            serializer = create_serializer(proto, include_validation=False)
            for op_name in model.operation_names:
                op = model.operation_model(op_name)
                if op.has_event_stream_input or op.has_event_stream_output:
                    continue
                params = sample(op.input_shape, 0, "") if op.input_shape is not None else {}
                try:
                    req = serializer.serialize_to_request(params, op)
                except Exception as e:  # botocore cannot serialize its own sample: skip
                    print(f"skip {svc}.{op_name}: {e!r}", file=sys.stderr)
                    continue
                report = ParamValidator().validate(params, op.input_shape) if op.input_shape else None
                body = req["body"]
                if isinstance(body, dict):
                    body = percent_encode_sequence(body).encode()
                if isinstance(body, str):
                    body = body.encode()
                url = req["url_path"]
                qs = req.get("query_string")
                if isinstance(qs, dict) and qs:
                    url += ("&" if "?" in url else "?") + percent_encode_sequence(qs)
                rec = {
                    "service": svc,
                    "api_version": model.api_version,
                    "operation": op_name,
                    "params": params,
                    "method": req["method"],
                    "url": url,
                    "headers": {k: str(v) for k, v in req["headers"].items()},
                    "host_prefix": req.get("host_prefix"),
                    "body": body.decode("utf-8", "replace"),
                    "botocore_valid": not (report and report.has_errors()),
                    "botocore_report": report.generate_report() if report and report.has_errors() else "",
                }
                out.write(json.dumps(rec) + "\n")
                n += 1
    print(f"{n} requests written to {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
