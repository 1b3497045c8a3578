"""The pure core never imports Ray, Redis or FastAPI."""

import subprocess
import sys


def test_core_imports_no_ray_redis_fastapi() -> None:
    """Import every core module in a fresh interpreter and check sys.modules."""
    code = (
        "import pkgutil, importlib, sys, twinloop\n"
        "for m in pkgutil.walk_packages(twinloop.__path__, 'twinloop.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in {'ray','redis','fastapi'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported: {out.stdout.strip()}"
