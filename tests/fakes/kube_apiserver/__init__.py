"""An in-process fake kube-apiserver for tests: the official client and kubectl can use it.

See docs/testing-fakes.md. Start one with `FakeKubeApiServer().start()` (or the pytest
fixture `kube_apiserver` from tests/fakes/kube_fixtures.py).
"""

from tests.fakes.kube_apiserver.admission import WriteOptions
from tests.fakes.kube_apiserver.errors import ApiError
from tests.fakes.kube_apiserver.kubeconfig import write_kubeconfig
from tests.fakes.kube_apiserver.server import FakeKubeApiServer, RecordedRequest
from tests.fakes.kube_apiserver.storage import Store

__all__ = [
    "ApiError",
    "FakeKubeApiServer",
    "RecordedRequest",
    "Store",
    "WriteOptions",
    "write_kubeconfig",
]
