"""A Python client for a GXNOR Lab server's REST API — notebooks, CI pipelines, the ``gxnor`` CLI itself
(docs/CLIENT.md).  Only httpx: importing it loads no web framework, database layer or torch.

    from gxnor_client import Client
    with Client("http://127.0.0.1:8000", token) as gx:
        run = gx.wait(gx.submit("quick", {"activations.a": 0.5}).id)
"""

from gxnor_client.client import ApiError, Client
from gxnor_client.types import BulkResult, Comparison, Progress, Run, RunPage, Sweep

__all__ = ["ApiError", "BulkResult", "Client", "Comparison", "Progress", "Run", "RunPage", "Sweep"]
