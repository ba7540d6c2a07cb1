#!/usr/bin/env python3
"""Lists the public items whose own doc comment has no code example.

Issue #17: every public type and every function a user calls first has a runnable example.
This scans the library sources of ringledger-core (core/src), ringledger (std-adapters/src)
and ringledger-jetstream (jetstream/src) at the level of tokens, not types, and checks:

- every public struct, enum, union, trait and type alias;
- every public free function or inherent method named like a first call: constructors
  (`new*`, `open*`, `create*`, `connect*`, `channel`, `split`, and associated `with_*`
  functions that take no `self`), and the calls that move data (`write*`, `read*`, `push*`,
  `pop*`, `try_push*`/`try_pop*`/`try_next`/`try_recv*`, `recv*`, `mark*`, `next`,
  `next_batch*`, `next_async`, `send`, `subscribe`).

An item has an example when its own doc comment (`///` above it) holds a Rust code block
(```, ```rust, ```no_run, ```should_panic; not ```text, ```ignore or ```compile_fail); the
module's `//!` examples do not count for it. Public means reachable by a user: `pub` in a
chain of `pub mod`s from the crate root, or re-exported by `pub use` from a private module.
Ignored on purpose: `pub(crate)`/`pub(super)`/`pub(in ..)` items, `#[doc(hidden)]` items,
items under `#[cfg(test)]`, `#[cfg(loom)]`, `#[cfg(fuzzing)]` or `#[cfg(doctest)]`, binaries
(`src/bin`), trait methods and trait impls (the trait's own example covers them), builder
methods `with_*(self, ..)` (the type's example covers them), constants and statics, and
methods of types that are not public. Features count as on: an item behind
`#[cfg(feature = "async")]` is checked like any other.

Prints one line per missing item, `path:line: kind crate::path::Name`, and exits 1 if any.
"""

import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CRATES = [
    ("ringledger_core", "core/src/lib.rs"),
    ("ringledger", "std-adapters/src/lib.rs"),
    ("ringledger_jetstream", "jetstream/src/lib.rs"),
]

FIRST_CALL = re.compile(
    r"^(new(_\w+)?|open(_in|_read_only|_with\w*)?|create(_\w+)?|connect(_\w+)?"
    r"|channel|split|send|subscribe|mark(_\w+)?|next|next_batch(_\w+)?|next_async"
    r"|write(_\w+)?|read(_\w+)?|push(_\w+)?|pop(_\w+)?|recv(_\w+)?"
    r"|try_(push|pop|recv|next|write|read)(_\w+)?|with_\w+)$"
)
# A fence that opens a Rust example rustdoc compiles: bare, `rust`, `no_run`, `should_panic`,
# `edition20xx` (not `text`, `ignore` or `compile_fail`, which show no working call).
RUNNABLE = re.compile(r"^```\s*((rust|no_run|should_panic|edition\d+)\s*,?\s*)*$")
USE = re.compile(r"^(pub(\s*\([^)]*\))?\s+)?use\b")
# `cfg`s under which an item is not part of the library a user builds.
EXCLUDED_CFG = re.compile(r"#\[cfg\(\s*(test|loom|fuzzing|doctest)\s*\)\]|#\[cfg\(all\(\s*test\b")
ITEM = re.compile(
    r"^(?P<vis>pub(\s*\([^)]*\))?\s+)?(default\s+)?(const\s+)?(async\s+)?(unsafe\s+)?"
    r"(extern\s+\"[^\"]*\"\s+)?"
    r"(?P<kind>struct|enum|union|trait|type|fn|mod|impl|use|macro_rules!)\b\s*(?P<rest>.*)$",
    re.S,
)


def clean(text):
    """Splits `text` into lines of (code, doc): code with comments and literals blanked (so
    braces and semicolons inside them do not count), doc the text of a `///` comment."""
    out_code, out_doc = [], []
    code, doc = [], None
    i, n = 0, len(text)
    block_depth = 0

    def newline():
        nonlocal code, doc
        out_code.append("".join(code))
        out_doc.append(doc)
        code, doc = [], None

    while i < n:
        c = text[i]
        if block_depth:
            if text.startswith("/*", i):
                block_depth += 1
                i += 2
            elif text.startswith("*/", i):
                block_depth -= 1
                i += 2
            else:
                if c == "\n":
                    newline()
                i += 1
            continue
        if c == "\n":
            newline()
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            comment = text[i:end]
            if comment.startswith("///") and not comment.startswith("////"):
                doc = comment[3:]
            i = end
        elif text.startswith("/*", i):
            block_depth = 1
            i += 2
        elif c == '"' or (
            c in "br"
            and re.match(r'(b?r#*"|b")', text[i : i + 5])
            and not (i and (text[i - 1].isalnum() or text[i - 1] == "_"))
        ):
            m = re.match(r'(b?r)(#*)"', text[i:i + 40])
            if m:  # raw string
                close = '"' + m.group(2)
                end = text.find(close, i + len(m.group(0)))
                end = n if end < 0 else end + len(close)
            else:
                j = i + (2 if c == "b" else 1)
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                end = j + 1
            for ch in text[i:end]:
                if ch == "\n":
                    newline()
            code.append('""')
            i = end
        elif c == "'":
            m = re.match(r"'(\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:i + 12])
            if m:  # a char literal, not a lifetime
                code.append("' '")
                i += len(m.group(0))
            else:
                code.append(c)
                i += 1
        else:
            code.append(c)
            i += 1
    newline()
    return out_code, out_doc


def has_runnable_block(doc):
    """Whether the doc comment's lines open a Rust code block (a closing fence is no opening)."""
    inside = False
    for line in doc:
        line = line.strip()
        if line.startswith("```"):
            if not inside and RUNNABLE.match(line):
                return True
            inside = not inside
    return False


class Scope:
    """What a `{` opened: a module or an inherent impl (whose items are checked), or anything
    else (a fn or struct body, a trait, an excluded item), whose inside is skipped."""

    def __init__(self, kind, module=None, self_type=None):
        self.kind = kind  # "mod", "impl", "other" or "excluded"
        self.module = module  # the module path (list) the items inside belong to
        self.self_type = self_type  # an inherent impl's type name


def strip_attrs(header):
    """The header without its attributes, and the attributes' text."""
    attrs = []
    h = header.lstrip()
    while h.startswith("#"):
        depth, j = 0, 0
        for j, ch in enumerate(h):
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
                if depth == 0:
                    break
        attrs.append(h[: j + 1])
        h = h[j + 1 :].lstrip()
    return h, " ".join(attrs)


def self_type_of(rest):
    """The implementing type's name in the text after `impl`, or None for a trait impl."""
    rest = rest.strip()
    if rest.startswith("<"):  # generics
        depth = 0
        for j, ch in enumerate(rest):
            depth += ch == "<"
            depth -= ch == ">"
            if depth == 0:
                rest = rest[j + 1 :]
                break
    rest = rest.split(" where ")[0]
    if re.search(r"\bfor\b", re.sub(r"<[^<>]*>", "", rest)):
        return None
    m = re.match(r"\s*(?:[\w:]+::)?(\w+)", rest)
    return m.group(1) if m else None


def parse_uses(rest):
    """`pub use` text to [(path, name_or_*, exported_name)]."""
    rest = rest.strip().rstrip(";").replace("\n", " ")

    def expand(prefix, s):
        s = s.strip()
        if not s:
            return []
        m = re.match(r"^(.*?)\{(.*)\}$", s, re.S)
        if m:
            base = prefix + [p for p in m.group(1).split("::") if p]
            parts, depth, cur = [], 0, ""
            for ch in m.group(2):
                if ch == "," and depth == 0:
                    parts.append(cur)
                    cur = ""
                    continue
                depth += ch == "{"
                depth -= ch == "}"
                cur += ch
            parts.append(cur)
            out = []
            for p in parts:
                out += expand(base, p)
            return out
        alias = None
        m = re.match(r"^(.*?)\s+as\s+(\w+)$", s)
        if m:
            s, alias = m.group(1), m.group(2)
        segs = prefix + [p.strip() for p in s.split("::") if p.strip()]
        name = segs[-1]
        return [(segs[:-1], name, alias or name)]

    return expand([], rest)


def scan(crate, lib):
    """Items, module publicity and re-exports of one crate."""
    items = []  # dict(kind, name, module, file, line, example, owner, in_impl)
    modules = {(): True}  # module path -> declared `pub`
    uses = []  # `pub use`s: (module, path, name, exported name)
    todo = [(os.path.join(ROOT, lib), ())]
    while todo:
        path, module = todo.pop()
        with open(path, encoding="utf-8") as f:
            codes, docs = clean(f.read())
        rel = os.path.relpath(path, ROOT)
        is_mod_rs = os.path.basename(path) in ("mod.rs", "lib.rs")
        dir_ = os.path.dirname(path) if is_mod_rs else os.path.splitext(path)[0]
        stack = [Scope("mod", module=list(module))]
        header, header_line, pending_doc = "", None, []
        paren = use_braces = 0
        skip_depth = None  # while set, skipping a body until the depth drops below it

        def handle(term, lineno):
            """A header ended at `term` (`{` or `;`): classify it."""
            nonlocal header, header_line, pending_doc
            text, attrs = strip_attrs(header)
            doc, line = pending_doc, header_line or lineno
            if text.strip():  # the item's own line, below its attributes
                line += header[: header.find(text.strip()[:30])].count("\n")
            header, header_line, pending_doc = "", None, []
            top = stack[-1]
            m = ITEM.match(text.strip())
            excluded = bool(EXCLUDED_CFG.search(attrs)) or "doc(hidden)" in attrs.replace(" ", "")
            if not m or top.kind == "other":
                return Scope("other")
            vis = (m.group("vis") or "").strip()
            public = vis == "pub"
            kind, rest = m.group("kind"), m.group("rest")
            if kind == "mod":
                name = re.match(r"(\w+)", rest).group(1)
                sub = tuple(top.module + [name])
                if excluded:
                    return Scope("excluded")
                modules[sub] = public
                if term == ";":
                    files = (os.path.join(dir_, name + ".rs"), os.path.join(dir_, name, "mod.rs"))
                    for cand in files:
                        if os.path.exists(cand):
                            todo.append((cand, sub))
                            break
                    return None
                return Scope("mod", module=list(sub))
            if kind == "impl":
                if excluded:
                    return Scope("excluded")
                return Scope("impl", module=top.module, self_type=self_type_of(rest))
            if kind == "use":
                if public and not excluded and top.kind == "mod":
                    for p, name, exported in parse_uses(rest):
                        uses.append((tuple(top.module), p, name, exported))
                return None
            if kind == "macro_rules!":
                return Scope("other")
            name_m = re.match(r"(\w+)", rest)
            if not name_m:
                return Scope("other")
            name = name_m.group(1)
            if excluded:
                return Scope("excluded") if term == "{" else None
            has_example = has_runnable_block(doc)
            if public and top.kind in ("mod", "impl"):
                if kind != "fn":
                    items.append(dict(kind=kind, name=name, module=tuple(top.module), file=rel,
                                      line=line, example=has_example, owner=None))
                else:
                    params = rest[rest.find("(") + 1 :]
                    takes_self = re.match(r"\s*(&\s*('\w+\s+)?(mut\s+)?)?(mut\s+)?self\b", params)
                    if FIRST_CALL.match(name) and not (name.startswith("with_") and takes_self):
                        items.append(dict(kind="fn", name=name, module=tuple(top.module), file=rel,
                                          line=line, example=has_example,
                                          owner=top.self_type if top.kind == "impl" else None,
                                          in_impl=top.kind == "impl"))
            return Scope("other")

        depth = 0
        for lineno, (code, doc) in enumerate(zip(codes, docs), 1):
            if doc is not None:
                if skip_depth is None:
                    pending_doc.append(doc)
                continue
            for ch in code:
                if skip_depth is not None:
                    # Inside a body with no items to check (a fn, a struct, a trait, an
                    # excluded module): only the braces matter.
                    depth += (ch == "{") - (ch == "}")
                    if depth < skip_depth:
                        skip_depth = None
                        header, header_line, pending_doc = "", None, []
                    continue
                if ch in "([":
                    paren += 1
                elif ch in ")]":
                    paren -= 1
                elif ch == "{" and paren == 0 and USE.match(strip_attrs(header)[0]):
                    use_braces += 1  # `use a::{b, c};`: a group, not a block
                elif ch == "}" and use_braces:
                    use_braces -= 1
                    header += ch
                    continue
                if use_braces:
                    header += ch
                    continue
                if ch == "{" and paren == 0:
                    scope = handle("{", lineno) or Scope("other")
                    depth += 1
                    if scope.kind in ("mod", "impl"):
                        stack.append(scope)
                    else:
                        skip_depth = depth
                elif ch == "}" and paren == 0:
                    depth -= 1
                    stack.pop()
                    header, header_line, pending_doc = "", None, []
                elif ch == ";" and paren == 0:
                    handle(";", lineno)
                else:
                    if ch in "{}":
                        depth += (ch == "{") - (ch == "}")
                    if not header.strip() and not ch.isspace():
                        header_line = lineno
                    header += ch
            if header.strip():
                header += "\n"
    return items, modules, uses


def resolve(module, path):
    """A `use` path relative to `module` as a module path, or None if it leaves the crate."""
    cur = list(module)
    for i, seg in enumerate(path):
        if seg == "crate" and i == 0:
            cur = []
        elif seg == "self" and i == 0:
            pass
        elif seg == "super":
            cur = cur[:-1]
        elif i == 0 and (seg in ("std", "core", "alloc") or seg.startswith("ringledger")):
            return None  # another crate's item: checked there, if it is ours
        else:
            cur.append(seg)
    return tuple(cur)


def check(crate, lib):
    """The crate's checked items that lack an example, and how many items were checked."""
    items, modules, uses = scan(crate, lib)

    def reachable(module):
        return all(modules.get(tuple(module[: i + 1]), False) for i in range(len(module)))

    def public(module, name, seen=()):
        """The module path a user names `name` by, or None if it is not public."""
        if reachable(module):
            return tuple(module)
        for where, path, used, exported in uses:
            target = resolve(where, path)
            if target is None or (where, exported) in seen:
                continue
            if target == tuple(module) and used in (name, "*"):
                inner = exported if used == name else name
                found = public(where, inner, seen + ((where, exported),))
                if found is not None:
                    return found
        return None

    types = [it for it in items if it["kind"] != "fn"]
    public_types = []
    for t in types:
        t["public_path"] = public(t["module"], t["name"])
        if t["public_path"] is not None:
            public_types.append(t)
    missing = [t for t in public_types if not t["example"]]

    def owner_type(fn):
        """The public type an inherent method belongs to, or None."""
        candidates = [t for t in types if t["name"] == fn["owner"]]
        if not candidates:
            return None
        # The definition nearest the impl: the longest shared module path.
        def nearness(t):
            return t["file"] == fn["file"], len(os.path.commonprefix([t["module"], fn["module"]]))

        best = max(candidates, key=nearness)
        return best if best in public_types else None

    fns = []
    for fn in items:
        if fn["kind"] != "fn":
            continue
        if fn.get("in_impl"):
            owner = fn["owner"] and owner_type(fn)
            if owner:
                fn["public_path"] = owner["public_path"]
                fns.append(fn)
        else:
            fn["public_path"] = public(fn["module"], fn["name"])
            if fn["public_path"] is not None:
                fns.append(fn)
    missing += [f for f in fns if not f["example"]]
    return missing, len(public_types) + len(fns)


def main():
    total, missing_all = 0, []
    for crate, lib in CRATES:
        missing, count = check(crate, lib)
        total += count
        missing_all += [(crate, m) for m in missing]
    missing_all.sort(key=lambda cm: (cm[1]["file"], cm[1]["line"]))
    for crate, m in missing_all:
        owner = m["owner"] + "::" if m.get("owner") else ""
        path = "::".join([crate, *m["public_path"]])
        print(f'{m["file"]}:{m["line"]}: {m["kind"]} {path}::{owner}{m["name"]}')
    print(f"doc examples: {total - len(missing_all)} of {total} checked items have one; "
          f"{len(missing_all)} missing")
    return 1 if missing_all else 0


if __name__ == "__main__":
    sys.exit(main())
