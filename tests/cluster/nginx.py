"""nginx sites of the test cluster, rendered from deploy/nginx/ with the cluster's ports and paths:
the builder's index directory (what `sync_index --from` pulls) and the shop front with an
upstream over every web node."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.deploy.stack import ROOT

BUILDER_TEMPLATE = ROOT / "deploy" / "nginx" / "meepo-builder.conf"
UPSTREAM_TEMPLATE = ROOT / "deploy" / "nginx" / "meepo-cluster.conf"
PLACEHOLDER = re.compile(r"\$\{(MEEPO_[A-Z0-9_]+)\}")


def render(template: Path, out: Path, values: dict[str, str]) -> Path:
    """envsubst of exactly the ${MEEPO_*} names the template uses, as deploy/render.sh does."""
    text = template.read_text()
    names = sorted(set(PLACEHOLDER.findall(text)))
    missing = [name for name in names if name not in values]
    assert not missing, f"{template.name}: no value for {missing}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **{n: values[n] for n in names}}
    shell_format = " ".join(f"${{{name}}}" for name in names)
    result = subprocess.run(["envsubst", shell_format], input=text, env=env, capture_output=True,
                            text=True, check=True)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.stdout)
    return out


def render_sites(cluster, out: Path) -> list[Path]:
    common = {
        "MEEPO_APP_DIR": str(ROOT),
        "MEEPO_SERVER_NAME": "127.0.0.1 localhost",
        "MEEPO_USER": os.environ.get("USER", "meepo"),
    }
    builder = {
        **common,
        "MEEPO_DATA_DIR": str(cluster.builder_data),
        "MEEPO_BUILDER_LISTEN": f"127.0.0.1:{cluster.builder_port}",
        "MEEPO_WEB_NODES": "127.0.0.1",  # the address the web nodes fetch from
    }
    # The load balancer serves /static/ and /media/ from its MEEPO_DATA_DIR: here the first node's
    # collectstatic output and the shared media store, linked in.
    lb = out.parent / "lb-data"
    lb.mkdir(parents=True, exist_ok=True)
    for name, target in (("staticfiles", cluster.nodes[0].data / "staticfiles"), ("media", cluster.media)):  # fmt: skip
        if not (lb / name).exists():
            (lb / name).symlink_to(target)
    assert len(cluster.nodes) == 2, "deploy/nginx/meepo-cluster.conf lists two web nodes"
    front = {
        **common,
        "MEEPO_DATA_DIR": str(lb),
        "MEEPO_LISTEN": f"127.0.0.1:{cluster.nginx_port}",
        "MEEPO_WEB_NODE_A": f"127.0.0.1:{cluster.nodes[0].port}",
        "MEEPO_WEB_NODE_B": f"127.0.0.1:{cluster.nodes[1].port}",
        "MEEPO_SEARCH_RATE": "100000r/s",  # every request of the load comes from 127.0.0.1
        "MEEPO_UPLOAD_RATE": "20r/m",
        "MEEPO_UPLOAD_BURST": "5",
        "MEEPO_LOGIN_RATE": "6r/m",
    }
    return [
        render(BUILDER_TEMPLATE, out / "meepo-builder.conf", builder),
        render(UPSTREAM_TEMPLATE, out / "meepo-cluster.conf", front),
    ]
