"""The FC 2.0 (2016-08-15) API of the local Function Compute, as the aliyun-fc2 SDK calls it.

Routes (the SDK's own paths):

- ``POST /2016-08-15/services/{service}[.{qualifier}]/functions/{function}/invocations``:
  synchronous by default (200, the handler's result; a function error is still 200 but
  carries ``X-Fc-Error-Type``, which fc2 turns into ``FcError``), asynchronous with
  ``x-fc-invocation-type: Async`` (202 and ``X-Fc-Request-Id``; queued like a trigger event).
- ``GET /2016-08-15/services/{service}[.{qualifier}]/functions/{function}``: GetFunction.
- ``PUT /2016-08-15/services/{service}.{qualifier}/functions/{function}/on-demand-config``
  with ``{"maximumInstanceCount": N}``: PutOnDemandConfig, which sets the running
  stand-in's instance cap (:meth:`LocalFunctionCompute.set_max_instances`); ``GET`` on the
  same path: GetOnDemandConfig. Both answer ``{"resource": "services/{service}.{qualifier}
  /functions/{function}", "maximumInstanceCount": N}``. The stand-in has one instance
  pool for every qualifier, so the last cap put (on any qualifier) is the one applied.

Every request must carry ``Authorization: FC AK:base64(HMAC-SHA256(secret, StringToSign))``
with StringToSign = ``VERB\\nContent-MD5\\nContent-Type\\nDate\\n`` + the sorted
``x-fc-*`` headers as ``k:v\\n`` + the unescaped path (+ ``\\n`` + sorted ``k=v`` query
lines when the SDK signs a query). Keys come from the shared :class:`CredentialStore`;
STS keys also need their ``x-fc-security-token``.

Errors use FC's JSON shape ``{"ErrorCode", "ErrorMessage"}``. Statuses 500/502/504 are
never used for function errors: fc2 retries those five times with back-off.

One FC 3.0 (2023-03-30) call is answered too, for functions deployed without a service
(s.yaml's fc3 component): ``POST /2023-03-30/functions/{function}/invocations`` with the
qualifier as the ``qualifier`` query parameter (InvokeFunction as the
alibabacloud-fc20230330 SDK builds it: ROA style, signed ``ACS3-HMAC-SHA256`` like every
Tea SDK request, checked by :class:`localcloud.rpc_auth.RpcVerifier`). It runs the same
function as the FC 2.0 route, named by the template's function name. Errors there use the
``{"Code", "Message", "RequestId"}`` shape the Tea SDK reads (assumed from that SDK's
error handling; no public FC 3.0 error sample was found).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from typing import TYPE_CHECKING, Any, Protocol

from werkzeug.wrappers import Request, Response

from localcloud.fc.errors import fc3_error, fc_error

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from localcloud.contracts import FaultHook
    from localcloud.credentials import CredentialStore
    from localcloud.fc.invoker import InvocationRecord, InvocationSource
    from localcloud.fc.template import FunctionSpec

API_VERSION = "2016-08-15"
FC3_API_VERSION = "2023-03-30"
#: FC 2.0 limits on the invocation payload.
MAX_ASYNC_PAYLOAD = 128 * 1024
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024

_ROUTE = re.compile(
    rf"^/{API_VERSION}/services/(?P<service>[^/]+)/functions/(?P<function>[^/]+)"
    r"(?P<sub>/invocations|/on-demand-config)?/?$"
)
_FC3_INVOKE = re.compile(rf"^/{FC3_API_VERSION}/functions/(?P<function>[^/]+)/invocations/?$")
#: The on-demand config field this stand-in understands.
MAX_INSTANCES_FIELD = "maximumInstanceCount"
#: The error GetOnDemandConfig answers for a function that has no on-demand config. The
#: code is the one FC's own SDK tests and the Terraform provider expect; the 404 status
#: is assumed (not confirmed against the live service).
NO_ON_DEMAND_CONFIG = (404, "OnDemandConfigNotFound")


def _operation(sub: str | None, method: str) -> str:
    """The FC action a request asks for (the name the fault seam is called with)."""
    if sub == "/invocations":
        return "InvokeFunction"
    if sub == "/on-demand-config":
        return "PutOnDemandConfig" if method == "PUT" else "GetOnDemandConfig"
    return "GetFunction"


def string_to_sign(request: Request, *, with_query: bool) -> str:
    """The FC signature's StringToSign for a received request (fc2 ``Auth.sign_request``)."""
    fc_headers = sorted(
        (k.lower(), v) for k, v in request.headers.items() if k.lower().startswith("x-fc-")
    )
    canonical = "".join(f"{k}:{v}\n" for k, v in fc_headers)
    resource = request.path
    if with_query:
        params = sorted(f"{k}={v}" for k, values in request.args.lists() for v in values)
        resource = resource + "\n" + "\n".join(params)
    return "\n".join(
        [
            request.method.upper(),
            request.headers.get("Content-MD5", ""),
            request.headers.get("Content-Type", ""),
            request.headers.get("Date", ""),
            canonical + resource,
        ]
    )


class FunctionBackend(Protocol):
    """What the API needs of the function it serves (LocalFunctionCompute provides it)."""

    spec: FunctionSpec
    credentials: CredentialStore
    faults: FaultHook | None

    @property
    def instance_concurrency(self) -> int: ...

    def invoke_async(
        self, payload: bytes, *, source: InvocationSource = ..., qualifier: str = ...
    ) -> str: ...

    def invoke_sync(self, payload: bytes, *, qualifier: str = ...) -> InvocationRecord: ...

    def set_max_instances(self, n: int) -> None: ...


class FcApiApp:
    """WSGI app answering the FC 2.0 (and FC 3.0 invoke) calls for one function."""

    def __init__(self, fc: FunctionBackend) -> None:
        self.fc = fc
        # Caps put per qualifier (the pool's cap is the last one put); guarded so the
        # recorded cap and the pool's cap never disagree when two PUTs race.
        self._on_demand: dict[str, int] = {}
        self._on_demand_lock = threading.Lock()
        self._fc3_verifier: Any = None  # built on the first FC 3.0 call

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith(f"/{FC3_API_VERSION}/"):
            return self.dispatch_fc3(request)
        match = _ROUTE.match(request.path)
        operation = _operation(match.group("sub") if match else None, request.method.upper())
        faults = self.fc.faults
        if faults is not None:
            injected = faults.before("fc", operation)
            if injected is not None:
                return injected
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        if match is None:
            return fc_error(404, "PathNotSupported", f"{request.method} {request.path}")
        service, _, qualifier = match.group("service").partition(".")
        if service != self.fc.spec.service:
            return fc_error(404, "ServiceNotFound", f"service '{service}' does not exist")
        if match.group("function") != self.fc.spec.name:
            return fc_error(
                404, "FunctionNotFound", f"function '{match.group('function')}' does not exist"
            )
        qualifier = qualifier or "LATEST"
        if operation == "InvokeFunction":
            if request.method != "POST":
                return fc_error(405, "MethodNotAllowed", "InvokeFunction needs POST")
            return self.invoke(request, qualifier)
        if operation == "PutOnDemandConfig":
            return self.put_on_demand_config(request, service, qualifier)
        if request.method != "GET":
            if operation == "GetOnDemandConfig":
                message = f"on-demand-config takes PUT or GET, not {request.method}"
            else:
                message = f"GetFunction needs GET, not {request.method}"
            return fc_error(405, "MethodNotAllowed", message)
        if operation == "GetOnDemandConfig":
            return self.get_on_demand_config(service, qualifier)
        return self.get_function()

    def dispatch_fc3(self, request: Request) -> Response:
        """FC 3.0 InvokeFunction (the only FC 3.0 call the stand-in answers)."""
        from datetime import datetime, timezone

        from localcloud.rpc_auth import AuthError, RpcVerifier

        faults = self.fc.faults
        if faults is not None:
            injected = faults.before("fc", "InvokeFunction")
            if injected is not None:
                return injected
        if self._fc3_verifier is None:
            self._fc3_verifier = RpcVerifier(self.fc.credentials)
        try:
            self._fc3_verifier.verify(
                method=request.method,
                path=request.path,
                query=dict(request.args.items()),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=request.get_data(),
                body_params={},
                now=datetime.now(timezone.utc),
            )
        except AuthError as exc:
            return fc3_error(exc.status, exc.code, exc.message)
        match = _FC3_INVOKE.match(request.path)
        if match is None:
            return fc3_error(404, "PathNotSupported", f"{request.method} {request.path}")
        if match.group("function") != self.fc.spec.name:
            return fc3_error(
                404, "FunctionNotFound", f"function '{match.group('function')}' does not exist"
            )
        if request.method != "POST":
            return fc3_error(405, "MethodNotAllowed", "InvokeFunction needs POST")
        return self.invoke(request, request.args.get("qualifier") or "LATEST", error=fc3_error)

    def authenticate(self, request: Request) -> Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("FC ") or ":" not in auth:
            return fc_error(401, "MissingRequiredHeader", "Authorization header is required")
        access_key_id, _, signature = auth[3:].partition(":")
        cred = self.fc.credentials.get(access_key_id.strip())
        if cred is None:
            return fc_error(403, "InvalidAccessKeyID", f"AccessKeyID {access_key_id} not found")
        if (
            cred.security_token
            and request.headers.get("x-fc-security-token") != cred.security_token
        ):
            return fc_error(403, "InvalidSecurityToken", "security token is missing or wrong")
        variants = [False, True] if request.args else [False]
        for with_query in variants:
            expected = base64.b64encode(
                hmac.new(
                    cred.access_key_secret.encode("utf-8"),
                    string_to_sign(request, with_query=with_query).encode("utf-8"),
                    hashlib.sha256,
                ).digest()
            ).decode("ascii")
            if hmac.compare_digest(expected, signature.strip()):
                return None
        return fc_error(
            403,
            "SignatureNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )

    def invoke(
        self,
        request: Request,
        qualifier: str,
        error: Callable[[int, str, str], Response] = fc_error,
    ) -> Response:
        payload = request.get_data()
        mode = request.headers.get("x-fc-invocation-type", "Sync").lower()
        if mode == "async":
            if len(payload) > MAX_ASYNC_PAYLOAD:
                return error(
                    413, "PayloadTooLarge", f"async payload exceeds {MAX_ASYNC_PAYLOAD} bytes"
                )
            request_id = self.fc.invoke_async(payload, source="async", qualifier=qualifier)
            resp = Response(b"", status=202)
            resp.headers["X-Fc-Request-Id"] = request_id
            return resp
        if len(payload) > MAX_SYNC_PAYLOAD:
            return error(413, "PayloadTooLarge", f"payload exceeds {MAX_SYNC_PAYLOAD} bytes")
        record = self.fc.invoke_sync(payload, qualifier=qualifier)
        resp = Response(record.result, status=200, content_type="application/octet-stream")
        resp.headers["X-Fc-Request-Id"] = record.request_id
        resp.headers["X-Fc-Invocation-Duration"] = str(int(record.duration * 1000))
        if record.status != "succeeded":
            resp.headers["X-Fc-Error-Type"] = record.error_type or "UnhandledInvocationError"
            resp.content_type = "application/json"
        return resp

    def get_function(self) -> Response:
        spec = self.fc.spec
        body = {
            "functionName": spec.name,
            "handler": spec.handler,
            "runtime": spec.runtime,
            "memorySize": spec.memory,
            "timeout": spec.timeout,
            "environmentVariables": spec.env,
            "initializer": spec.initializer or "",
            "instanceConcurrency": self.fc.instance_concurrency,
            "layers": list(spec.layers),
        }
        return Response(json.dumps(body), status=200, content_type="application/json")

    def _on_demand_body(self, service: str, qualifier: str, count: int) -> Response:
        body = {
            "resource": f"services/{service}.{qualifier}/functions/{self.fc.spec.name}",
            MAX_INSTANCES_FIELD: count,
        }
        return Response(json.dumps(body), status=200, content_type="application/json")

    def put_on_demand_config(self, request: Request, service: str, qualifier: str) -> Response:
        """PutOnDemandConfig: validate ``{"maximumInstanceCount": N}`` and apply the cap."""
        raw = request.get_data()
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            body = None  # not JSON: refused below like any other non-object
        if not isinstance(body, dict):
            return fc_error(
                400,
                "InvalidArgument",
                f"request body: must be a JSON object such as "
                f'{{"{MAX_INSTANCES_FIELD}": 1}}, got {_shown(raw)}',
            )
        if MAX_INSTANCES_FIELD not in body:
            return fc_error(
                400,
                "InvalidArgument",
                f"{MAX_INSTANCES_FIELD}: is required (an integer of at least 0), "
                f"got an object without it: {_shown(raw)}",
            )
        count = body[MAX_INSTANCES_FIELD]
        # JSON true/false parse to bool, a subclass of int: not a count.
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return fc_error(
                400,
                "InvalidArgument",
                f"{MAX_INSTANCES_FIELD}: must be an integer of at least 0, got {json.dumps(count)}",
            )
        with self._on_demand_lock:
            self._on_demand[qualifier] = count
            self.fc.set_max_instances(count)
        return self._on_demand_body(service, qualifier, count)

    def get_on_demand_config(self, service: str, qualifier: str) -> Response:
        """GetOnDemandConfig: the cap put on this qualifier, or not found if none was."""
        with self._on_demand_lock:
            count = self._on_demand.get(qualifier)
        if count is None:
            status, code = NO_ON_DEMAND_CONFIG
            return fc_error(
                status,
                code,
                f"on-demand config of services/{service}.{qualifier}/functions/"
                f"{self.fc.spec.name} does not exist",
            )
        return self._on_demand_body(service, qualifier, count)


def _shown(raw: bytes, limit: int = 200) -> str:
    """A request body for an error message: decoded, shortened, never empty."""
    if not raw:
        return "an empty body"
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."
