#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of the AWS emulator (moto server), for orgop's
end-to-end tests and benchmarks. Standard library only; binds to 127.0.0.1.

It forwards every request to --upstream unchanged, except:
  --deny-assume-role ACCOUNT   sts:AssumeRole into a role of ACCOUNT answers 403 AccessDenied
                               (repeatable)
  --deny-role-name NAME        sts:AssumeRole into a role named NAME, in any account, answers
                               403 AccessDenied (repeatable)
  --throttle-ec2 N             the first N ec2 requests answer 503 RequestLimitExceeded
  --throttle-every K           after those, every K-th ec2 request answers 503 too (0: never)
  --latency-ms MS              every forwarded request waits MS milliseconds first
  --seed N                     seed of the fault draws below (default 0): one draw per request
  --fault-throttle PCT         PCT % of requests answer a throttling error: ec2 503
                               RequestLimitExceeded, s3 503 SlowDown, others 400 ThrottlingException
  --fault-5xx PCT              PCT % answer 500 InternalError (the request is not forwarded)
  --fault-reset PCT            PCT % have their connection closed without an answer (not forwarded)
  --fault-timeout PCT          PCT % get no answer for --slow-ms, then the connection is closed
                               (not forwarded)
  --fault-truncate PCT         PCT % are forwarded, then their answer is cut halfway (the request
                               did reach the emulator: the outcome is unknown to the client)
  --slow-ms MS                 how long a --fault-timeout request is held (default 5000)
  --fault-services a,b         the services (by signing name) faults apply to (default: all)
  --fault-actions A,B          the form-encoded Actions (e.g. CreateVolume) faults apply to
                               (default: all)
  --log-param NAME             every form-encoded request with an Action is logged in
                               `requests` with its Action, the fault it got (or null) and the
                               value of each NAME parameter (repeatable): e.g. ClientToken, to
                               see which idempotency token each attempt carried
  --serialize SERVICE          requests to SERVICE (by signing name, e.g. dynamodb) are
                               forwarded one at a time (repeatable): AWS applies a conditional
                               write atomically, moto server checks and writes without a lock,
                               so concurrent conditional updates can both pass there
It prints "listening on PORT" once ready, and counts what it did in GET /__proxy/stats
(including `ec2_mutating`: ec2 requests whose Action is not a Describe/List/Get, and
`assumed_roles`: AssumeRole requests by role name; `faults`: faults injected by kind; and
`mutations`: mutating ec2 requests the emulator answered with success, by `Action:resource id`
(the first parameter ending in `Id`), so a resource acted on twice shows a count of 2).

usage: aws_proxy.py --upstream http://127.0.0.1:5000 [--port 0] [options]
"""
import argparse, json, random, socket, threading, time, urllib.parse, uuid
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

p = argparse.ArgumentParser()
p.add_argument("--upstream", required=True)
p.add_argument("--port", type=int, default=0)
p.add_argument("--deny-assume-role", action="append", default=[])
p.add_argument("--deny-role-name", action="append", default=[])
p.add_argument("--throttle-ec2", type=int, default=0)
p.add_argument("--throttle-every", type=int, default=0)
p.add_argument("--latency-ms", type=int, default=0)
p.add_argument("--serialize", action="append", default=[])
p.add_argument("--seed", type=int, default=0)
p.add_argument("--fault-throttle", type=float, default=0)
p.add_argument("--fault-5xx", type=float, default=0)
p.add_argument("--fault-reset", type=float, default=0)
p.add_argument("--fault-timeout", type=float, default=0)
p.add_argument("--fault-truncate", type=float, default=0)
p.add_argument("--slow-ms", type=int, default=5000)
p.add_argument("--fault-services", default="")
p.add_argument("--fault-actions", default="")
p.add_argument("--log-param", action="append", default=[])
args = p.parse_args()
up = urllib.parse.urlparse(args.upstream)

lock = threading.Lock()
serial = threading.Lock()
stats = {"requests": [], "forwarded": 0, "denied_assume_role": 0, "throttled": 0, "ec2_requests": 0, "ec2_mutating": 0, "assumed_roles": {}, "faults": {}, "mutations": {}}
draws = random.Random(args.seed)
FAULT_SERVICES = {s for s in args.fault_services.split(",") if s}
FAULT_ACTIONS = {s for s in args.fault_actions.split(",") if s}


def draw_fault(service, action):
    """One draw per request: which fault, if any."""
    if FAULT_SERVICES and service not in FAULT_SERVICES:
        return None
    if FAULT_ACTIONS and action not in FAULT_ACTIONS:
        return None
    with lock:
        x = draws.random() * 100
    for kind, pct in (("throttle", args.fault_throttle), ("5xx", args.fault_5xx),
                      ("reset", args.fault_reset), ("timeout", args.fault_timeout),
                      ("truncate", args.fault_truncate)):
        if x < pct:
            with lock:
                stats["faults"][kind] = stats["faults"].get(kind, 0) + 1
            return kind
        x -= pct
    return None
READ_VERBS = ("Describe", "List", "Get")
local = threading.local()


def upstream():
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        local.conn = conn
    return conn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, ctype="text/xml"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/__proxy/stats":
            with lock:
                return self.reply(200, json.dumps(stats), "application/json")
        auth = self.headers.get("Authorization", "")
        service = auth.split("Credential=")[1].split("/")[3] if "Credential=" in auth else ""
        form = {}
        if body and "x-www-form-urlencoded" in self.headers.get("Content-Type", ""):
            form = dict(urllib.parse.parse_qsl(body.decode()))
        if service == "sts" and form.get("Action") == "AssumeRole":
            account = form.get("RoleArn", "::::").split(":")[4]
            role_name = form.get("RoleArn", "").split(":role/")[-1]
            with lock:
                stats["assumed_roles"][role_name] = stats["assumed_roles"].get(role_name, 0) + 1
            if account in args.deny_assume_role or role_name in args.deny_role_name:
                with lock:
                    stats["denied_assume_role"] += 1
                msg = f"User: arn:aws:iam::000000000000:user/orgop is not authorized to perform: sts:AssumeRole on resource: {form.get('RoleArn')}"
                return self.reply(403, f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{msg}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>')
        fault = draw_fault(service, form.get("Action", "")) if service else None
        if args.log_param and form.get("Action"):
            with lock:
                stats["requests"].append({"service": service, "action": form["Action"], "fault": fault,
                                          "params": {n: form.get(n) for n in args.log_param}})
        if fault == "throttle":
            if service == "ec2":
                return self.reply(503, f"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>")
            if service == "s3":
                return self.reply(503, f"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>{uuid.uuid4()}</RequestId></Error>")
            return self.reply(400, f'<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>' if "x-www-form-urlencoded" in self.headers.get("Content-Type", "") else json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}), "text/xml" if "x-www-form-urlencoded" in self.headers.get("Content-Type", "") else "application/x-amz-json-1.1")
        if fault == "5xx":
            if "x-www-form-urlencoded" in self.headers.get("Content-Type", "") or service == "s3":
                return self.reply(500, f"<Response><Errors><Error><Code>InternalError</Code><Message>An internal error has occurred</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>")
            return self.reply(500, json.dumps({"__type": "InternalFailure", "message": "An internal error has occurred"}), "application/x-amz-json-1.1")
        if fault in ("reset", "timeout"):
            if fault == "timeout":
                time.sleep(args.slow_ms / 1000)
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.connection.close()
            except OSError:
                pass
            return
        if service == "ec2":
            with lock:
                stats["ec2_requests"] += 1
                if not form.get("Action", "").startswith(READ_VERBS):
                    stats["ec2_mutating"] += 1
                n = stats["ec2_requests"]
                throttle = n <= args.throttle_ec2 or (args.throttle_every and n % args.throttle_every == 0)
                if throttle:
                    stats["throttled"] += 1
            if throttle:
                return self.reply(503, f"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>")
        if args.latency_ms:
            time.sleep(args.latency_ms / 1000)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive", "proxy-connection")}
        if service in args.serialize:
            with serial:
                resp, data = self.forward(body, headers)
        else:
            resp, data = self.forward(body, headers)
        with lock:
            stats["forwarded"] += 1
            action = form.get("Action", "")
            if service == "ec2" and action and not action.startswith(READ_VERBS) and resp.status < 300:
                rid = next((v for k, v in sorted(form.items()) if k.endswith("Id") and k != "DryRun"), "")
                key = f"{action}:{rid}"
                stats["mutations"][key] = stats["mutations"].get(key, 0) + 1
        if fault == "truncate":
            self.send_response(resp.status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def forward(self, body, headers):
        for attempt in range(2):
            try:
                conn = upstream()
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                return resp, resp.read()
            except (http.client.HTTPException, OSError):
                local.conn = None
                if attempt:
                    raise

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any


server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
