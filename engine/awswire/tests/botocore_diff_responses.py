#!/usr/bin/env python3
"""Render a sample response for every operation of every botocore service and parse it with
botocore, so that `tests/botocore_models.rs` (test `same_results_as_botocore`) can check
that orgop-awswire parses the same bytes into the same result.

    python3 engine/awswire/tests/botocore_diff_responses.py /tmp/botocore-responses.jsonl
    ORGOP_BOTOCORE_DATA=... ORGOP_BOTOCORE_RESPONSES=/tmp/botocore-responses.jsonl \
        cargo test -p orgop-awswire --test botocore_models -- --ignored

The rendering follows the models' wire names; it need not be byte-identical to what AWS
sends, since both parsers read the same bytes. Results are put in orgop's conventions
(timestamps as RFC 3339 UTC strings, blobs as base64) before they are written.
"""

import base64
import datetime
import json
import sys
from xml.sax.saxutils import escape

import botocore.session
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser

PRIORITY = ("json", "rest-json", "rest-xml", "query", "ec2")
TS = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def sample(shape, depth, name):
    t = shape.type_name
    if t == "structure":
        if getattr(shape, "is_document_type", False):
            return {"doc": [1, "x"]}
        if depth > 4:
            return {}
        out = {}
        for mname, m in shape.members.items():
            if m.serialization.get("eventstream") or m.type_name == "structure" and m.serialization.get("eventstream"):
                continue
            if m.serialization.get("xmlAttribute"):
                continue
            out[mname] = sample(m, depth + 1, mname)
            if getattr(shape, "is_tagged_union", False):
                break
        return out
    if t == "list":
        return [] if depth > 4 else [sample(shape.member, depth + 1, name), sample(shape.member, depth + 1, name)]
    if t == "map":
        return {} if depth > 4 else {"k1": sample(shape.value, depth + 1, name), "k2": sample(shape.value, depth + 1, name)}
    if t == "string":
        return shape.enum[0] if shape.enum else "v-" + name.lower()
    if t in ("integer", "long", "short", "byte"):
        return 7
    if t in ("float", "double"):
        return 1.5
    if t == "boolean":
        return True
    if t == "timestamp":
        return TS
    if t == "blob":
        return b"blob data"
    return "v"


def scalar_text(shape, v, ts_format="iso8601"):
    t = shape.type_name
    if t == "boolean":
        return "true" if v else "false"
    if t == "timestamp":
        fmt = shape.serialization.get("timestampFormat", ts_format)
        if fmt == "rfc822":
            return "Thu, 02 Jan 2020 03:04:05 GMT"
        if fmt == "unixTimestamp":
            return "1577934245"
        return "2020-01-02T03:04:05Z"
    if t == "blob":
        return base64.b64encode(v).decode()
    return str(v)


def xml(shape, v, name):
    t = shape.type_name
    if t == "structure":
        parts = []
        for mname, m in shape.members.items():
            if mname not in v or m.serialization.get("location"):
                continue
            mv = v[mname]
            wire = m.serialization.get("name", mname)
            if m.type_name == "list" and m.serialization.get("flattened"):
                el = m.member.serialization.get("name", wire)
                parts.extend(xml(m.member, item, el) for item in mv)
            elif m.type_name == "map" and m.serialization.get("flattened"):
                kn = m.key.serialization.get("name", "key")
                vn = m.value.serialization.get("name", "value")
                for k, item in mv.items():
                    parts.append(f"<{wire}>{xml(m.key, k, kn)}{xml(m.value, item, vn)}</{wire}>")
            else:
                parts.append(xml(m, mv, wire))
        return f"<{name}>{''.join(parts)}</{name}>"
    if t == "list":
        el = shape.member.serialization.get("name", "member")
        return f"<{name}>{''.join(xml(shape.member, i, el) for i in v)}</{name}>"
    if t == "map":
        kn = shape.key.serialization.get("name", "key")
        vn = shape.value.serialization.get("name", "value")
        entries = "".join(f"<entry>{xml(shape.key, k, kn)}{xml(shape.value, i, vn)}</entry>" for k, i in v.items())
        return f"<{name}>{entries}</{name}>"
    return f"<{name}>{escape(scalar_text(shape, v))}</{name}>"


def js(shape, v):
    t = shape.type_name
    if t == "structure":
        if getattr(shape, "is_document_type", False):
            return v
        return {m.serialization.get("name", k): js(m, v[k]) for k, m in shape.members.items()
                if k in v and not m.serialization.get("location")}
    if t == "list":
        return [js(shape.member, i) for i in v]
    if t == "map":
        return {k: js(shape.value, i) for k, i in v.items()}
    if t == "timestamp":
        fmt = shape.serialization.get("timestampFormat", "unixTimestamp")
        return 1577934245 if fmt == "unixTimestamp" else scalar_text(shape, v, fmt)
    if t == "blob":
        return base64.b64encode(v).decode()
    return v


def render(proto, op, shape, value):
    headers = {}
    if proto in ("query", "ec2"):
        inner = xml(shape, value, "X")[3:-4]
        if proto == "query" and shape.serialization.get("resultWrapper"):
            w = shape.serialization["resultWrapper"]
            inner = f"<{w}>{inner}</{w}>"
        return headers, f'<{op.name}Response xmlns="https://example.com/">{inner}</{op.name}Response>'.encode()
    if proto == "json":
        return headers, json.dumps(js(shape, value)).encode()
    for mname, m in shape.members.items():
        loc = m.serialization.get("location")
        if mname not in value:
            continue
        if loc == "header":
            hn = m.serialization.get("name", mname)
            v = value[mname]
            if m.serialization.get("jsonvalue"):
                headers[hn] = base64.b64encode(json.dumps(v).encode()).decode()
            elif m.type_name == "list":
                headers[hn] = ", ".join(scalar_text(m.member, i, "rfc822") for i in v)
            else:
                headers[hn] = scalar_text(m, v, "rfc822")
        elif loc == "headers":
            for k, v in value[mname].items():
                headers[m.serialization.get("name", "") + k] = v
        elif loc == "statusCode":
            value[mname] = 200
    payload = shape.serialization.get("payload")
    if payload:
        pm = shape.members[payload]
        pv = value.get(payload)
        if pm.type_name == "blob":
            return headers, pv
        if pm.type_name == "string":
            return headers, pv.encode()
        if proto == "rest-json":
            return headers, json.dumps(js(pm, pv)).encode()
        return headers, xml(pm, pv, pm.serialization.get("name", payload)).encode()
    if proto == "rest-json":
        return headers, json.dumps(js(shape, value)).encode()
    return headers, xml(shape, value, shape.name).encode()


def render_error(proto, svc, shape, code, value):
    """An error response for a modeled error shape, with a request id."""
    if proto in ("query", "ec2", "rest-xml"):
        fields = xml(shape, value, "X")[3:-4]
        inner = f"<Code>{code}</Code><Message>it failed &amp; stopped</Message>{fields}"
        if proto == "ec2":
            body = f"<Response><Errors><Error>{inner}</Error></Errors><RequestID>rid-1</RequestID></Response>"
        elif svc == "s3":
            body = f"<Error>{inner}<RequestId>rid-1</RequestId></Error>"
        else:
            body = f"<ErrorResponse><Error><Type>Sender</Type>{inner}</Error><RequestId>rid-1</RequestId></ErrorResponse>"
        headers = {}
        if proto == "rest-xml":
            headers = {k: v for k, v in render("rest-xml", None, shape, dict(value))[0].items()}
        return headers, body.encode()
    body = js(shape, value)
    body["message"] = "it failed & stopped"
    headers = {"x-amzn-RequestId": "rid-1"}
    if proto == "json":
        body["__type"] = f"com.amazonaws.demo#{code}"
    else:
        headers["x-amzn-errortype"] = f"{code}:http://internal.amazon.com/coral/com.amazon.coral.validate/"
        headers.update(render("rest-json", None, shape, dict(value))[0])
    return headers, json.dumps(body).encode()


def convention(v):
    if isinstance(v, dict):
        return {k: convention(i) for k, i in v.items()}
    if isinstance(v, list):
        return [convention(i) for i in v]
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    if hasattr(v, "read"):
        return base64.b64encode(v.read()).decode()
    return v


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
            for op_name in model.operation_names:
                op = model.operation_model(op_name)
                shape = op.output_shape
                if shape is None or op.has_event_stream_output:
                    continue
                value = sample(shape, 0, "")
                try:
                    headers, body = render(proto, op, shape, value)
                    parser = create_parser(proto)
                    parsed = parser.parse(
                        {"body": body, "headers": HeadersDict(headers), "status_code": 200,
                         "context": {"operation_name": op_name}},
                        shape,
                    )
                except Exception as e:
                    print(f"skip {svc}.{op_name}: {e!r}", file=sys.stderr)
                    continue
                parsed.pop("ResponseMetadata", None)
                payload = shape.serialization.get("payload")
                if payload and shape.members[payload].type_name == "blob" and isinstance(parsed.get(payload), str):
                    # botocore hands a non-streaming blob payload back as text; orgop's
                    # convention is base64 for every blob.
                    parsed[payload] = parsed[payload].encode()
                rec = {
                    "service": svc,
                    "operation": op_name,
                    "headers": headers,
                    "body": base64.b64encode(body).decode(),
                    "expected": convention(parsed),
                }
                try:
                    line = json.dumps(rec)
                except TypeError as e:  # botocore returned something that is not data
                    print(f"skip {svc}.{op_name}: {e!r}", file=sys.stderr)
                    continue
                out.write(line + "\n")
                n += 1
            for op_name in model.operation_names:
                op = model.operation_model(op_name)
                for err in op.error_shapes[:1]:
                    code = err.metadata.get("error", {}).get("code", err.name)
                    value = sample(err, 0, "")
                    # Members that collide with the error envelope itself are left out.
                    for mname, m in err.members.items():
                        wire = m.serialization.get("name", mname)
                        if wire.lower() in ("message", "code", "x-amzn-errortype", "type"):
                            value.pop(mname, None)
                    try:
                        headers, body = render_error(proto, svc, err, code, value)
                        parser = create_parser(proto)
                        resp = {"body": body, "headers": HeadersDict(headers), "status_code": 400,
                                "context": {"operation_name": op_name}}
                        parsed = parser.parse(resp, op.output_shape)
                        found = parsed.get("Error", {}).get("Code")
                        shape = model.shape_for_error_code(found) if found else None
                        if shape is not None:
                            parsed.update(parser.parse(resp, shape))
                    except Exception as e:
                        print(f"skip error {svc}.{op_name}: {e!r}", file=sys.stderr)
                        continue
                    meta = parsed.pop("ResponseMetadata", {})
                    error = parsed.pop("Error", {})
                    rec = {
                        "service": svc,
                        "operation": op_name,
                        "status": 400,
                        "headers": headers,
                        "body": base64.b64encode(body).decode(),
                        "expected_error": {
                            "code": error.get("Code"),
                            "message": error.get("Message"),
                            "request_id": meta.get("RequestId"),
                            "data": convention(parsed),
                        },
                    }
                    try:
                        line = json.dumps(rec)
                    except TypeError as e:
                        print(f"skip error {svc}.{op_name}: {e!r}", file=sys.stderr)
                        continue
                    out.write(line + "\n")
                    n += 1
    print(f"{n} responses written to {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
