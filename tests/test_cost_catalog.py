"""``GET /catalog`` describes the cost model (``costs``) so that the run page's cost panel and compare's cost
table label their figures from the server: the schemes in the order ``/costs`` answers them, with the
assumption each must show beside its numbers, what every count is, and this server's energy table."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from app.schemas import CostTotals
from app.settings import Settings
from gxnor_core.costs import EnergyTable

ADMIN = "gx_cost-catalog-admin"


def test_the_catalog_names_every_scheme_count_and_this_servers_energy_table(tmp_path):
    table = EnergyTable(source="A lab's own measurements", node="7 nm", fp32_mult_pj=1.5, memory_read_64bit_pj=4.0)
    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN, energy_table=table)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        costs = c.get("/api/v1/catalog").json()["costs"]
    assert [s["name"] for s in costs["schemes"]] == ["run", "full_precision", "bwn", "twn", "bnn"]
    assert all(s["label"] and len(s["assumption"]) > 40 for s in costs["schemes"])
    # every count a scheme's totals carry is described (the two ratios are the panel's own columns)
    assert set(CostTotals.model_fields) - {"resting_fraction", "energy_vs_full_precision"} == set(costs["counts"])
    assert all(text.strip() for text in costs["counts"].values())
    # the server's table, not the default one
    assert costs["energy_table"] == table.model_dump()
    assert (costs["energy_table"]["source"], costs["energy_table"]["node"]) == ("A lab's own measurements", "7 nm")
