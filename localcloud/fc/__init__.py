"""The local Function Compute, in parts (the way moto splits a service):

- :mod:`~localcloud.fc.template`: the function as template.yml / s.yaml declare it;
- :mod:`~localcloud.fc.pool`: instance processes and the pool that schedules onto them;
- :mod:`~localcloud.fc.launcher`: how an instance process starts (argv, FC's environment
  and request headers, the initializer);
- :mod:`~localcloud.fc.invoker`: asynchronous invocation, retries and destinations;
- :mod:`~localcloud.fc.api`: the FC HTTP API (FC 2.0, and FC 3.0 InvokeFunction), with
  its error shapes in :mod:`~localcloud.fc.errors`;
- :mod:`~localcloud.fc.builtin`: the built-in Python runtime's instance process;
- :mod:`~localcloud.fc.function`: :class:`LocalFunctionCompute`, the backend that ties
  them together and the Python API tests use;
- :mod:`~localcloud.fc.testkit`: helpers for tests that write their own functions.
"""

from localcloud.fc.function import LocalFunctionCompute
from localcloud.fc.invoker import InvocationRecord, InvocationSource, destination_record
from localcloud.fc.launcher import Flavour
from localcloud.fc.pool import InvocationStatus

__all__ = [
    "Flavour",
    "InvocationRecord",
    "InvocationSource",
    "InvocationStatus",
    "LocalFunctionCompute",
    "destination_record",
]
