"""The one error-code registry (ltx2stream/codes.py): every raised code is a registered, documented constant."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ltx2stream import codes
from ltx2stream.errors import LTX2StreamError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ltx2stream"

# Places that pass on a code that was already raised (and so checked) elsewhere, with why.
PASS_THROUGH = {
    ("client/session.py", "err.code"): "a wire `error` received from the server becomes a SessionError",
    ("server/connection.py", "err.code"): "a caught LTX2StreamError is reported (error message, metrics)",
    ("server/ending.py", "err.code"): "the ending error's code goes into `final.error_code`",
    ("protocol/codec.py", "code[:64]"): "error_from truncates a caught error's code for the wire",
    (
        "protocol/schema.py",
        "code",
    ): "a field's own code (Str(code=codes.SESSION_BAD_ID)) or protocol.out_of_range",
    ("server/videos/jobs.py", "code"): "a failed video job's caught error code goes into its `error`",
    ("errors.py", "code"): "an unpickled error gets back the code it was raised with (encoder processes)",
}


def _code_sites(tree: ast.AST) -> list[ast.expr]:
    """Expressions that set an error code: ``code=``/``error_code=`` arguments and ``default_code = ...``."""
    sites: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in ("code", "error_code"):
            sites.append(node.value)
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "default_code" for t in node.targets
        ):
            sites.append(node.value)
    return sites


def _leaves(expr: ast.expr) -> list[ast.expr]:
    """The alternatives of a (possibly conditional) code expression."""
    if isinstance(expr, ast.IfExp):
        return _leaves(expr.body) + _leaves(expr.orelse)
    return [expr]


def _imports_registry(tree: ast.Module) -> bool:
    return any(
        isinstance(n, ast.ImportFrom) and n.module == "ltx2stream" and any(a.name == "codes" for a in n.names)
        for n in ast.walk(tree)
    )


def scan(package: Path = PACKAGE) -> tuple[set[str], list[str]]:
    """(names of registry constants used as codes, problems) over every module of ``package``."""
    used: set[str] = set()
    problems: list[str] = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for site in _code_sites(tree):
            for leaf in _leaves(site):
                text = ast.unparse(leaf)
                where = f"ltx2stream/{rel}:{leaf.lineno}: {text}"
                if (
                    isinstance(leaf, ast.Attribute)
                    and isinstance(leaf.value, ast.Name)
                    and leaf.value.id == "codes"
                ):
                    if not _imports_registry(tree):
                        problems.append(f"{where} (`codes` is not `from ltx2stream import codes`)")
                    elif not isinstance(getattr(codes, leaf.attr, None), str):
                        problems.append(f"{where} (not a constant of ltx2stream/codes.py)")
                    used.add(leaf.attr)
                elif (rel, text) not in PASS_THROUGH:
                    kind = "a literal string" if isinstance(leaf, ast.Constant) else "not a registry constant"
                    problems.append(f"{where} ({kind}; use codes.<NAME> from ltx2stream/codes.py)")
    return used, problems


def test_every_raised_code_is_a_registered_constant():
    """Every code= / default_code in the package is codes.<NAME> of the registry (or a listed pass-through)."""
    used, problems = scan()
    assert not problems, "\n".join(problems)
    unregistered = {name for name in used if getattr(codes, name) not in codes.ERRORS}
    assert not unregistered, unregistered


def test_scan_catches_literal_and_unknown_codes(tmp_path):
    """The scanner reports a literal code string and a constant that the registry does not define."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "bad.py").write_text(
        "from ltx2stream import codes\n"
        "def f():\n"
        "    raise ValueError('x', code='input.fps')\n"
        "def g(flag):\n"
        "    raise ValueError('x', code=codes.INPUT_FPS if flag else codes.NOT_A_CODE)\n"
    )
    _, problems = scan(pkg)
    assert len(problems) == 2, problems
    assert "a literal string" in problems[0] and "codes.NOT_A_CODE" in problems[1]


def test_registry_names_follow_the_codes():
    """Each constant is its code upper-cased with '.' as '_', and every registered code has its constant."""
    constants = {k: v for k, v in vars(codes).items() if k.isupper() and isinstance(v, str)}
    for name, code in constants.items():
        assert name == code.upper().replace(".", "_"), (name, code)
        assert code in codes.ERRORS, code
    assert set(constants.values()) == set(codes.ERRORS)
    assert all(re.fullmatch(r"[a-z]+(\.[a-z0-9_]+)?", c) for c in codes.ERRORS)


def test_registering_a_code_twice_is_refused():
    """A second registration of the same code is an error at import time, so a code has one entry."""
    with pytest.raises(AssertionError, match="registered twice"):
        codes._request(codes.INPUT_FPS, "again")


def test_docs_list_every_registered_code():
    """docs/protocol.md has a row for every code of the registry."""
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    missing = [c for c in codes.ERRORS if f"| `{c}` |" not in doc]
    assert not missing, missing


def test_error_classes_default_to_registered_codes():
    """Every error class of the hierarchy defaults to a registered code."""
    classes = [LTX2StreamError, *LTX2StreamError.__subclasses__()]
    for cls in classes:
        assert cls.default_code in codes.ERRORS, cls
