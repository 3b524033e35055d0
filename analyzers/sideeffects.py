"""Does a function reach outside the process (network, processes, files, sleeping, stdin)? From its text alone.

A property test calls its target hundreds of times with generated arguments. For a function that fetches a URL,
runs a command, writes or deletes files, or sleeps, that is not a test: it needs the network, changes the
machine it runs on, fails for reasons that are not bugs, or takes minutes. Test synthesis leaves such functions
out and says why. The check is syntactic and errs on the side of leaving a function out: a missed suggestion
costs little, an invalid one costs the reader's trust.
"""

from __future__ import annotations

import ast

# Module roots whose calls talk to the network, other processes or a database.
_IO_MODULES = frozenset(
    {
        "requests", "httpx", "urllib3", "aiohttp", "socket", "subprocess", "smtplib", "ftplib", "telnetlib",
        "boto3", "botocore", "sqlite3", "psycopg", "psycopg2", "pymysql", "MySQLdb", "redis", "pymongo",
        "paramiko", "webbrowser", "asyncio.subprocess",
    }
)  # fmt: skip
_IO_CALLS = frozenset(
    {
        "open", "input", "breakpoint", "exec", "eval",
        "os.system", "os.popen", "os.spawnl", "os.spawnv", "os.execv", "os.execvp", "os.fork", "os.kill",
        "os.remove", "os.unlink", "os.rmdir", "os.removedirs", "os.mkdir", "os.makedirs", "os.rename",
        "os.replace", "os.chmod", "os.chown", "os.symlink", "os.link", "os.truncate", "os.chdir",
        "shutil.rmtree", "shutil.move", "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree",
        "time.sleep", "asyncio.sleep", "urllib.request.urlopen", "urlopen", "http.client.HTTPConnection",
        "http.client.HTTPSConnection", "tempfile.mkstemp", "tempfile.mkdtemp",
    }
)  # fmt: skip
# Method names that touch files whatever object they are called on (pathlib and friends).
_IO_METHODS = frozenset(
    {"write_text", "write_bytes", "read_text", "read_bytes", "unlink", "mkdir", "rmdir", "touch", "urlopen"}
)


def io_call(source: str) -> str | None:
    """The first call in `source` that reaches outside the process (e.g. "requests.get"), or None."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return None
    imported: dict[str, str] = {}  # local name → module, for imports inside the function
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name is None:
            continue
        head, _, rest = name.partition(".")
        full = f"{imported[head]}.{rest}".rstrip(".") if head in imported else name
        if full in _IO_CALLS or name in _IO_CALLS:
            return full
        root = full.split(".")[0]
        if root in _IO_MODULES or ".".join(full.split(".")[:2]) in _IO_MODULES:
            return full
        if isinstance(node.func, ast.Attribute) and node.func.attr in _IO_METHODS:
            return name
    return None


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    if isinstance(node, ast.Call | ast.Subscript) and parts:
        return "." + ".".join(reversed(parts))  # a method on a computed value: only the method name counts
    return None
