"""The FC 2.0 (2016-08-15) API of the local Function Compute, as the aliyun-fc2 SDK calls it.

Routes (the SDK's own paths; :data:`FC2_ROUTES` and :data:`FC3_ROUTES` map each method and
path pattern to its operation and handler, so a new call is one handler and one line there):

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from werkzeug.wrappers import Request, Response

from localcloud.fc.errors import fc3_error, fc_error

if TYPE_CHECKING:
    from collections.abc import Iterable

    from localcloud.contracts import FaultHook
    from localcloud.credentials import CredentialStore
    from localcloud.fc.invoker import InvocationRecord, InvocationSource
    from localcloud.fc.template import FunctionSpec

API_VERSION = "2016-08-15"
FC3_API_VERSION = "2023-03-30"
#: FC 2.0 limits on the invocation payload.
MAX_ASYNC_PAYLOAD = 128 * 1024
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024

_FC2_FUNCTION = rf"^/{API_VERSION}/services/(?P<service>[^/]+)/functions/(?P<function>[^/]+)"
_FC3_FUNCTION = rf"^/{FC3_API_VERSION}/functions/(?P<function>[^/]+)"
#: The on-demand config field this stand-in understands.
MAX_INSTANCES_FIELD = "maximumInstanceCount"
#: The error GetOnDemandConfig answers for a function that has no on-demand config. The
#: code is the one FC's own SDK tests and the Terraform provider expect; the 404 status
#: is assumed (not confirmed against the live service).
NO_ON_DEMAND_CONFIG = (404, "OnDemandConfigNotFound")


@dataclass(frozen=True)
class Target:
    """What a request names: the service (FC 2.0 only), the function and the qualifier."""

    service: str | None
    function: str
    qualifier: str


#: A route's handler: the app, the request and what its path named.
Handler = Callable[["FcApiApp", Request, Target], Response]
ErrorShape = Callable[[int, str, str], Response]
#: A route's method that takes every method the path's earlier routes did not.
ANY = "*"


@dataclass(frozen=True)
class Route:
    """One line of a route table: method + path pattern -> FC operation and handler.

    ``operation`` is the action's name as the fault seam sees it (a refused method is
    still an attempt at the path's operation).
    """

    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Handler

    def takes(self, method: str, path: str) -> re.Match[str] | None:
        if self.method not in (ANY, method):
            return None
        return self.pattern.match(path)


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
        """Find the route, then: fault seam, signature, target, the route's handler."""
        api = FC3 if request.path.startswith(f"/{FC3_API_VERSION}/") else FC2
        route, match = api.resolve(request.method, request.path)
        faults = self.fc.faults
        if faults is not None:
            injected = faults.before("fc", route.operation if route else api.unmatched)
            if injected is not None:
                return injected
        denied = api.authenticate(self, request)
        if denied is not None:
            return denied
        if route is None or match is None:
            return api.error(404, "PathNotSupported", f"{request.method} {request.path}")
        target = api.target(match, request)
        missing = self.missing(target, api.error)
        if missing is not None:
            return missing
        return route.handler(self, request, target)

    def missing(self, target: Target, error: ErrorShape) -> Response | None:
        """404 when the path names a service or function this stand-in does not run."""
        if target.service is not None and target.service != self.fc.spec.service:
            return error(404, "ServiceNotFound", f"service '{target.service}' does not exist")
        if target.function != self.fc.spec.name:
            return error(404, "FunctionNotFound", f"function '{target.function}' does not exist")
        return None

    def authenticate_fc3(self, request: Request) -> Response | None:
        """FC 3.0's ACS3-HMAC-SHA256 signature (the Tea SDK's), checked like the POP APIs'."""
        from datetime import datetime, timezone

        from localcloud.rpc_auth import AuthError, RpcVerifier

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
        return None

    def authenticate(self, request: Request) -> Response | None:
        """FC 2.0's ``Authorization: FC AK:signature`` (and the STS token, for STS keys)."""
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
        error: ErrorShape = fc_error,
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


def _refuse(message: str, error: ErrorShape) -> Handler:
    """A handler answering 405 with ``message`` (``{method}``: the request's method)."""

    def handler(app: FcApiApp, request: Request, target: Target) -> Response:
        return error(405, "MethodNotAllowed", message.format(method=request.method))

    return handler


def _fc2_target(match: re.Match[str], request: Request) -> Target:
    service, _, qualifier = match.group("service").partition(".")
    return Target(service, match.group("function"), qualifier or "LATEST")


def _fc3_target(match: re.Match[str], request: Request) -> Target:
    return Target(None, match.group("function"), request.args.get("qualifier") or "LATEST")


@dataclass(frozen=True)
class Api:
    """One API version: its route table, signature, error shape and what a path names."""

    routes: tuple[Route, ...]
    #: The operation the fault seam sees for a path no route takes.
    unmatched: str
    authenticate: Callable[[FcApiApp, Request], Response | None]
    error: ErrorShape
    target: Callable[[re.Match[str], Request], Target]

    def resolve(self, method: str, path: str) -> tuple[Route | None, re.Match[str] | None]:
        """The first route taking ``method`` on ``path``, and its match."""
        for route in self.routes:
            match = route.takes(method, path)
            if match is not None:
                return route, match
        return None, None


_FC2_INVOCATIONS = re.compile(_FC2_FUNCTION + r"/invocations/?$")
_FC2_ON_DEMAND = re.compile(_FC2_FUNCTION + r"/on-demand-config/?$")
_FC2_GET_FUNCTION = re.compile(_FC2_FUNCTION + r"/?$")
_FC3_INVOCATIONS = re.compile(_FC3_FUNCTION + r"/invocations/?$")


def _invoke(app: FcApiApp, request: Request, target: Target) -> Response:
    return app.invoke(request, target.qualifier)


def _invoke_fc3(app: FcApiApp, request: Request, target: Target) -> Response:
    return app.invoke(request, target.qualifier, error=fc3_error)


def _put_on_demand_config(app: FcApiApp, request: Request, target: Target) -> Response:
    return app.put_on_demand_config(request, target.service or "", target.qualifier)


def _get_on_demand_config(app: FcApiApp, request: Request, target: Target) -> Response:
    return app.get_on_demand_config(target.service or "", target.qualifier)


def _get_function(app: FcApiApp, request: Request, target: Target) -> Response:
    return app.get_function()


#: FC 2.0, first match wins; each path's ``ANY`` line refuses the methods above it did not take.
FC2_ROUTES: tuple[Route, ...] = (
    Route("POST", _FC2_INVOCATIONS, "InvokeFunction", _invoke),
    Route(ANY, _FC2_INVOCATIONS, "InvokeFunction", _refuse("InvokeFunction needs POST", fc_error)),
    Route("PUT", _FC2_ON_DEMAND, "PutOnDemandConfig", _put_on_demand_config),
    Route("GET", _FC2_ON_DEMAND, "GetOnDemandConfig", _get_on_demand_config),
    Route(
        ANY,
        _FC2_ON_DEMAND,
        "GetOnDemandConfig",
        _refuse("on-demand-config takes PUT or GET, not {method}", fc_error),
    ),
    Route("GET", _FC2_GET_FUNCTION, "GetFunction", _get_function),
    Route(
        ANY,
        _FC2_GET_FUNCTION,
        "GetFunction",
        _refuse("GetFunction needs GET, not {method}", fc_error),
    ),
)

#: FC 3.0: InvokeFunction only.
FC3_ROUTES: tuple[Route, ...] = (
    Route("POST", _FC3_INVOCATIONS, "InvokeFunction", _invoke_fc3),
    Route(ANY, _FC3_INVOCATIONS, "InvokeFunction", _refuse("InvokeFunction needs POST", fc3_error)),
)

FC2 = Api(
    routes=FC2_ROUTES,
    unmatched="GetFunction",
    authenticate=lambda app, request: app.authenticate(request),
    error=fc_error,
    target=_fc2_target,
)
#: FC 3.0: the only call answered is InvokeFunction, so every request is one to the seam.
FC3 = Api(
    routes=FC3_ROUTES,
    unmatched="InvokeFunction",
    authenticate=lambda app, request: app.authenticate_fc3(request),
    error=fc3_error,
    target=_fc3_target,
)
