#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Settings of the sasync plugin, from their one description (conf/sasync.opt).

  settings.py conf      print conf/sasync.conf (the strongswan.d snippet)
  settings.py readme    print the settings table of README.md
  settings.py man       print the settings of man/strongswan-sasync.8 (roff,
                        between its "settings" and "end of settings" lines)
  settings.py --check   check that conf/sasync.conf, README.md and the man
                        page are what the .opt file gives, and that the
                        plugin's sources read exactly the keys it lists;
                        exit 1 if not
"""
import difflib
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "charon.plugins.sasync."


def parse(path):
    """List of (key, default, short, long) from the .opt file."""
    options, cur = [], None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("#"):
            continue
        if line.startswith(PREFIX):
            key, _, default = line[len(PREFIX):].partition("=")
            cur = {"key": key.strip(), "default": default.strip(),
                   "text": []}
            options.append(cur)
        elif line.startswith("\t") and cur is not None:
            cur["text"].append(line[1:])
        elif not line.strip() and cur is not None:
            cur["text"].append("")
        elif line.strip() and cur is not None:
            sys.exit("settings.py: unexpected line in %s: %r" % (path, line))
    result = []
    for o in options:
        text = "\n".join(o["text"]).strip("\n").split("\n\n", 1)
        text = [t.replace("\n\n\n", "\n\n") for t in text]
        if len(text) != 2:
            sys.exit("settings.py: %s needs a short and a long description"
                     % o["key"])
        result.append((o["key"], o["default"], text[0].strip(),
                       text[1].strip()))
    return result


def conf(options):
    out = ["sasync {", ""]
    for key, default, _, long in options:
        out += ["    # " + l if l else "    #" for l in long.split("\n")]
        if default.startswith("{"):
            default = ""
        out.append("    %s%s = %s" % ("" if key == "load" else "# ", key,
                                        default))
        out[-1] = out[-1].rstrip()
        out.append("")
    out[-1] = "}"
    return "\n".join(out) + "\n"


def readme(options):
    out = ["| setting | default | meaning |", "|---|---|---|"]
    for key, default, short, _ in options:
        if default.startswith("{"):
            shown = default[1:-1]
        else:
            shown = "`%s`" % default if default else ""
        out.append("| `%s` | %s| %s |" % (key, shown + " " if shown else "",
                                           short))
    return "\n".join(out) + "\n"


def readme_table(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    start = lines.index("| setting | default | meaning |")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end]) + "\n"


def roff(text, literal=False):
    """Plain text as roff: backslashes escaped, no control character at
    the start of a line, code in bold with its hyphens as minus signs (all
    of them if literal, e.g. a key or URI)."""
    text = text.replace("\\", "\\e")
    if literal:
        text = text.replace("-", "\\-")
    text = re.sub(r"`([^`]*)`",
                  lambda m: "\\fB%s\\fR" % m.group(1).replace("-", "\\-"),
                  text)
    return "\n".join("\\&" + l if l[:1] in (".", "'") else l
                     for l in text.split("\n"))


def man(options):
    out = []
    for key, default, _, long in options:
        shown = default[1:-1] if default.startswith("{") else default
        out.append('.TP\n.BR %s " [%s]"' % (roff(PREFIX + key, True),
                                           roff(shown, True)))
        out.append(roff(long))
    return "\n".join(out) + "\n"


MAN_START = '.\\" settings: generated from conf/sasync.opt'
MAN_END = '.\\" end of settings'


def man_settings(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    start = [i for i, l in enumerate(lines) if l.startswith(MAN_START)][0]
    end = lines.index(MAN_END)
    return "\n".join(lines[start + 1:end]) + "\n"


def keys_in_sources():
    keys = set()
    src = os.path.join(TOP, "plugin")
    for name in os.listdir(src):
        if name.endswith(".c"):
            text = open(os.path.join(src, name), encoding="utf-8").read()
            keys |= set(re.findall(r'setting\("([a-z_]+)"', text))
            keys |= set(re.findall(r'plugins\.sasync\.([a-z_]+)', text))
    return keys


def check(options):
    ok = True
    for name, want, have in (
            ("conf/sasync.conf", conf(options),
             open(os.path.join(TOP, "conf/sasync.conf"), encoding="utf-8").read()),
            ("README.md settings table", readme(options),
             readme_table(os.path.join(TOP, "README.md"))),
            ("man/strongswan-sasync.8 settings", man(options),
             man_settings(os.path.join(TOP, "man/strongswan-sasync.8")))):
        if want != have:
            ok = False
            print("settings.py: %s differs from conf/sasync.opt:" % name)
            sys.stdout.writelines(difflib.unified_diff(
                have.splitlines(True), want.splitlines(True), name,
                "from conf/sasync.opt"))
    listed = {o[0] for o in options} - {"load"}
    read = keys_in_sources()
    for key in sorted(read - listed):
        ok = False
        print("settings.py: the plugin reads '%s', conf/sasync.opt lacks it"
              % key)
    for key in sorted(listed - read):
        ok = False
        print("settings.py: conf/sasync.opt lists '%s', the plugin never "
              "reads it" % key)
    if ok:
        print("settings.py: conf/sasync.conf, README.md, the man page and the "
              "plugin agree with conf/sasync.opt (%d settings)" % len(options))
    return ok


def main():
    options = parse(os.path.join(TOP, "conf/sasync.opt"))
    arg = sys.argv[1] if len(sys.argv) > 1 else ""
    if arg == "conf":
        sys.stdout.write(conf(options))
    elif arg == "readme":
        sys.stdout.write(readme(options))
    elif arg == "man":
        sys.stdout.write(man(options))
    elif arg == "--check":
        sys.exit(0 if check(options) else 1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
