"""What ``sh`` prints for recipe lines made of ``echo``, ``printf`` and ``for`` loops, never run.

``shell_prints('for l in S1 S2; do echo "deploy $l"; done')`` -> ``["deploy S1", "deploy S2"]``.
Statements split at ``;``, ``&&``, ``||`` and newlines outside quotes; ``$V``/``${V}`` expanded
outside single quotes; any other command prints nothing here (POSIX ``sh``: ``for``, ``echo``,
``printf``). Proved equal to ``make -s`` with /bin/sh on generated Makefiles
(tests/differential/test_make_differential.py).
"""
from __future__ import annotations

import re
import shlex


def _statements(text: str) -> list[str]:
    """Split shell text at ``;``, ``&&``, ``||`` and newlines outside quotes (backslash-newline joins)."""
    text = text.replace("\\\n", "")
    out, current, quote, index = [], [], "", 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"' and index + 1 < len(text):
                current.append(char)
                index += 1
                char = text[index]
            current.append(char)
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == "\\" and index + 1 < len(text):
            current.append(char + text[index + 1])
            index += 1
        elif char in ";\n" or text.startswith(("&&", "||"), index):
            out.append("".join(current).strip())
            current = []
            index += 1 if char in ";\n" else 2
            continue
        else:
            current.append(char)
        index += 1
    out.append("".join(current).strip())
    return [s for s in out if s]


def _expand(text: str, variables: dict[str, str]) -> str:
    """``$V`` and ``${V}`` outside single quotes (unset: empty, as sh expands them)."""
    out, quote, index = [], "", 0
    while index < len(text):
        char = text[index]
        if char == "'" and quote != '"':
            quote = "" if quote == "'" else "'"
        elif char == '"' and quote != "'":
            quote = "" if quote == '"' else '"'
        elif char == "\\" and quote != "'" and index + 1 < len(text):
            out.append(text[index:index + 2])
            index += 2
            continue
        elif char == "$" and quote != "'":
            match = re.match(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))", text[index:])
            if match:
                value = variables.get(match[1] or match[2], "")
                out.append(value if quote else shlex.quote(value) if " " not in value else value)
                index += match.end()
                continue
        out.append(char)
        index += 1
    return "".join(out)


def _printf(fmt: str, args: list[str]) -> str:
    escapes = {"n": "\n", "t": "\t", "\\": "\\", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", '"': '"'}
    fmt = re.sub(r"\\(.)", lambda m: escapes.get(m[1], "\\" + m[1]), fmt)
    out, args = [], list(args)
    while True:  # printf reuses the format while arguments remain
        pieces = re.split(r"(%[-+ #0]*\d*(?:\.\d+)?[sdbcq%])", fmt)
        used = False
        for piece in pieces:
            if re.fullmatch(r"%[-+ #0]*\d*(?:\.\d+)?[sdbcq]", piece):
                used = True
                out.append(args.pop(0) if args else "")
            else:
                out.append("%" if piece == "%%" else piece)
        if not args or not used:
            return "".join(out)


def shell_prints(text: str) -> list[str]:
    """What ``sh`` prints for ``text`` made of echo/printf commands and ``for`` loops around them, as lines.
    Any other command contributes nothing (it is never run)."""
    printed: list[str] = []
    _run(_statements(text), {}, printed)
    return "".join(printed).splitlines()


def _run(statements: list[str], variables: dict[str, str], printed: list[str]) -> None:
    index = 0
    while index < len(statements):
        statement = statements[index]
        loop = re.match(r"^for\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.*?)\s*$", statement, re.DOTALL)
        if loop:
            body, depth, end = [], 0, index + 1
            if end < len(statements) and statements[end].startswith("do"):
                first = statements[end][2:].strip()
                body_statements = ([first] if first else [])
                end += 1
                while end < len(statements):
                    item = statements[end]
                    if item.startswith("for "):
                        depth += 1
                    if item == "done" or item.startswith("done "):
                        if depth == 0:
                            break
                        depth -= 1
                    body_statements.append(item)
                    end += 1
                body = body_statements
            try:
                words = shlex.split(_expand(loop[2], variables))
            except ValueError:
                words = []
            for word in words:
                _run(body, {**variables, loop[1]: word}, printed)
            index = end + 1
            continue
        try:
            argv = shlex.split(_expand(statement, variables))
        except ValueError:
            argv = []
        while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
            argv = argv[1:]
        if argv[:1] == ["echo"]:
            args, newline = argv[1:], True
            while args and re.fullmatch(r"-[neE]+", args[0]):
                newline = newline and "n" not in args[0]
                args = args[1:]
            printed.append(" ".join(args) + ("\n" if newline else ""))
        elif argv[:1] == ["printf"] and len(argv) > 1:
            printed.append(_printf(argv[1], argv[2:]))
        index += 1
