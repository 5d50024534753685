"""docs/mqtt.md's table of components is the one in openmeg.core.bus_acl."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docs_mqtt_md_matches_the_bus_acl() -> None:
    spec = importlib.util.spec_from_file_location("mqtt_doc", ROOT / "scripts/mqtt_doc.py")
    assert spec is not None and spec.loader is not None
    doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc)
    committed = (ROOT / "docs" / "mqtt.md").read_text()
    assert doc.render(committed) == committed, "run python scripts/mqtt_doc.py"
    assert "| head-end | `openmeg-<site>-head-end` | `meg/<site>/customer/+/readings`" in committed
    assert "openmeg run --site demo --mqtt 127.0.0.1:8883 --mqtt-ca" in committed
