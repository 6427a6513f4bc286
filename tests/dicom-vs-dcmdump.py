#!/usr/bin/python3
# dicom-vs-dcmdump — check mlk-ingest's DICOM records against dcmtk's
# dcmdump, a reader nobody here wrote (used by tests/mlk-ingest.bats).
#
#   dicom-vs-dcmdump.py RECORDS.ndjson
#
# For every record, runs `dcmdump -q +L -Un` on the record's source file and
# compares, element by element (top level and inside sequences, by path
# TAG[item].TAG...): the set of elements, their VRs, and the values of text
# and number VRs (text after trimming, PN rebuilt from its groups, numbers
# numerically).  Binary and bulk values are compared by presence only.
# Prints one line per difference and "checked N elements in M files";
# exits 1 on any difference.
import json
import re
import subprocess
import sys

LINE = re.compile(r"^( *)\(([0-9a-f]{4}),([0-9a-f]{4})\) (\S\S) (.*?)\s+# *(\S+), *\d+ .*$", re.S)
NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "IS", "DS"}
TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM",
            "UC", "UI", "UR", "UT", "PN"}


def dcmdump(path, charset_utf8):
    out = subprocess.run(["dcmdump", "-q", "+L", "-Un", path],
                         stdout=subprocess.PIPE, check=True).stdout
    text = out.decode("utf-8" if charset_utf8 else "latin-1",
                      errors="replace")
    elems = {}
    stack = []          # [tag, item index, encapsulated]
    # A text value with line breaks spans lines of the dump.
    lines = []
    for raw in text.split("\n"):
        if lines and not re.match(r"^ *\(|^#|^$", raw):
            lines[-1] += "\n" + raw
        else:
            lines.append(raw)
    for raw in lines:
        m = LINE.match(raw)
        if not m:
            continue
        indent, g, e, vr, val, _ = m.groups()
        depth = len(indent) // 2
        tag = (g + e).upper()
        if vr == "??":
            vr = "UN"
        if g == "fffe":
            if e == "e000":
                lvl = (depth - 1) // 2
                del stack[lvl + 1:]
                if lvl < len(stack):
                    stack[lvl][1] += 1
            continue
        if g == "0002" or e == "0000":
            continue
        n = depth // 2
        del stack[n:]
        if any(s[2] for s in stack):
            continue
        path = "".join("%s[%d]." % (s[0], s[1]) for s in stack) + tag
        elems[path] = (vr, val)
        if vr == "SQ" or (vr in ("OB", "OW", "UN") and
                          val.startswith("(PixelSequence")):
            stack.append([tag, -1, vr != "SQ"])
        elif vr in ("UN", "OB", "OW") and val.startswith("(Sequence"):
            # UN of undefined length: a sequence in implicit VR.
            stack.append([tag, -1, False])
            elems[path] = ("SQ", val)
    return elems


def flatten(obj, prefix, out):
    for tag, el in obj.items():
        path = prefix + tag
        out[path] = el
        if el.get("vr") == "SQ":
            for i, item in enumerate(el.get("Value", [])):
                flatten(item, "%s[%d]." % (path, i), out)


def dump_values(vr, val):
    """The values dcmdump printed, as a list of strings (None: empty)."""
    if val.startswith("(no value available)"):
        return []
    if val.startswith("[") and val.endswith("]"):
        val = val[1:-1]
    elif val.startswith("("):
        return None     # a note such as "(not loaded)"
    if vr in ("LT", "ST", "UT", "UR"):
        parts = [val.rstrip(" \0")]
    else:
        parts = [p.strip(" \0") for p in val.split("\\")]
    if all(p == "" for p in parts) and len(parts) == 1:
        return []
    return [p if p != "" else None for p in parts]


def ours(vr, el):
    vals = el.get("Value", [])
    res = []
    for v in vals:
        if v is None:
            res.append(None)
        elif vr == "PN":
            s = "=".join([v.get("Alphabetic", ""), v.get("Ideographic", ""),
                          v.get("Phonetic", "")]).rstrip("=")
            res.append(s if s else None)
        else:
            res.append(v)
    return res


def same(vr, a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x is None or y is None:
            if vr in ("IS", "DS") and x is None and y is not None:
                # We write null for text that is not a number.
                try:
                    float(y)
                    return False
                except ValueError:
                    continue
            if x != y:
                return False
            continue
        if vr in NUMBER_VRS:
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                return False
            if fx != fy and abs(fx - fy) > 1e-6 * max(abs(fx), abs(fy)):
                return False
        elif str(x) != str(y):
            return False
    return True


def opaque_set(opaque):
    return {o[:-1] for o in opaque}


def main():
    bad = 0
    checked = 0
    files = 0
    for line in open(sys.argv[1], encoding="utf-8"):
        rec = json.loads(line)
        path = rec["_mlk"]["src"]["path"]
        ds = rec["dicom"]
        cs = ds.get("00080005", {}).get("Value", [""])[0] or ""
        dump = dcmdump(path, cs == "ISO_IR 192")
        mine = {}
        flatten(ds, "", mine)
        files += 1
        # Private elements of implicit VR files whose value starts with an
        # item we read as sequences; dcmdump without a private dictionary
        # entry shows them as UN bytes: compare the element, not inside.
        opaque = [p + "[" for p, (vr, _) in dump.items()
                  if vr == "UN" and mine.get(p, {}).get("vr") == "SQ"]
        for p in sorted(set(dump) | set(mine)):
            if any(p.startswith(o) for o in opaque):
                continue
            if p in opaque_set(opaque):
                checked += 1
                continue
            if p not in mine:
                print("%s: %s: missing in the record" % (path, p))
                bad += 1
                continue
            if p not in dump:
                print("%s: %s: not in dcmdump's output" % (path, p))
                bad += 1
                continue
            checked += 1
            vr, val = dump[p]
            el = mine[p]
            if el["vr"] == "UN" and int(p.split(".")[-1][:4], 16) & 1:
                # Implicit VR private elements: dcmdump knows private
                # dictionaries, we do not (our VR: UN).
                continue
            if el["vr"] != vr and not (vr in ("OB", "OW", "UN") and
                                       el["vr"] in ("OB", "OW", "UN")):
                print("%s: %s: vr %s, dcmdump %s" % (path, p, el["vr"], vr))
                bad += 1
                continue
            if vr not in NUMBER_VRS and vr not in TEXT_VRS:
                continue
            want = dump_values(vr, val)
            if want is None:
                continue
            got = ours(vr, el)
            if not same(vr, got, want):
                print("%s: %s (%s): values differ: %r vs dcmdump %r" %
                      (path, p, vr, got, want))
                bad += 1
    print("checked %d elements in %d files, %d differences" %
          (checked, files, bad))
    return 1 if bad or not files else 0


if __name__ == "__main__":
    sys.exit(main())
