"""Functions that reach outside the process get no property test; pure ones still do."""

from __future__ import annotations

import textwrap

import pytest

from analyzers.sideeffects import io_call


@pytest.mark.parametrize(
    ("source", "reached"),
    [
        ("def f(base):\n    return requests.get(URL, params={'b': base}).json()\n", "requests.get"),
        ("def f(cmd):\n    import subprocess\n    return subprocess.run(cmd)\n", "subprocess.run"),
        ("def f(p):\n    from shutil import rmtree\n    rmtree(p)\n", "shutil.rmtree"),
        ("def f(p):\n    with open(p, 'w') as fh:\n        fh.write('x')\n", "open"),
        ("def f(p):\n    return Path(p).read_text()\n", ".read_text"),
        ("def f(n):\n    time.sleep(n)\n", "time.sleep"),
        ("def f(u):\n    from urllib.request import urlopen\n    return urlopen(u).read()\n", "urllib.request.urlopen"),
        ("def f(x):\n    import httpx as h\n    return h.post('https://x', json=x)\n", "httpx.post"),
        ("async def f(x):\n    await asyncio.sleep(x)\n", "asyncio.sleep"),
        ("def f(path):\n    os.remove(path)\n", "os.remove"),
    ],
)
def test_io_is_found(source: str, reached: str) -> None:
    assert io_call(source) == reached


@pytest.mark.parametrize(
    "source",
    [
        "def f(xs):\n    return sorted(set(xs))\n",
        "def f(s):\n    return s.strip().lower().replace(' ', '-')\n",
        "def f(data):\n    import json\n    return json.loads(data)\n",
        "def f(a, b):\n    return math.gcd(a, b)\n",
        "def f(req):\n    return req.get('name')\n",  # a dict-like .get, not the requests module
        "def f(text):\n    return text.encode('utf-8')\n",
        "def f(:\n",  # not parseable: nothing to say
    ],
)
def test_pure_functions_are_left_alone(source: str) -> None:
    assert io_call(source) is None


def test_synthesis_leaves_a_network_call_out() -> None:
    from analyzers.diff import ChangeSet
    from analyzers.testgen import TestRequest, synthesize_tests

    module = textwrap.dedent(
        """
        import requests


        def fetch_rates(base: str) -> dict:
            return requests.get("https://rates.example.com", params={"base": base}, timeout=5).json()


        def normalize_code(code: str) -> str:
            return code.strip().upper()
        """
    )
    lines = module.splitlines()
    diff = f"--- /dev/null\n+++ b/shop/rates.py\n@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{x}\n" for x in lines)
    result = synthesize_tests(TestRequest(ChangeSet.from_unified_diff(diff), {"shop/rates.py": module}.get))
    targets = {t.function for test in result.tests for t in test.targets}
    assert "normalize_code" in targets
    assert "fetch_rates" not in targets
