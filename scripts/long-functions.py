#!/usr/bin/env python3
"""Lists functions in src/ longer than a limit (default 100 lines, from `fn` to its closing
brace), and exits 1 if any lacks a reason: a comment line starting `Long because` in the
comment block right above it (doc comments and attributes may sit in between).

Usage: scripts/long-functions.py [--limit N] [--all] [ROOT]
  --all   also list the long functions that give a reason
Test modules (`mod tests` and other #[cfg(test)] code) are counted too: a test longer than a
screen is as hard to read as any other function.
"""
import os
import re
import sys

FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+"[^"]*"\s+)?fn\s+(\w+)')


def strip(line, state):
    """The line without comments, strings and char literals; `state` carries block comments
    and raw strings across lines."""
    out = []
    i = 0
    n = len(line)
    while i < n:
        if state['block']:
            j = line.find('*/', i)
            if j < 0:
                return ''.join(out)
            state['block'] = False
            i = j + 2
            continue
        if state['raw'] is not None:
            j = line.find('"' + '#' * state['raw'], i)
            if j < 0:
                return ''.join(out)
            i = j + 1 + state['raw']
            state['raw'] = None
            continue
        c = line[i]
        if line.startswith('//', i):
            break
        if line.startswith('/*', i):
            state['block'] = True
            i += 2
            continue
        m = re.match(r'b?r(#*)"', line[i:])
        if m and (i == 0 or not (line[i - 1].isalnum() or line[i - 1] == '_')):
            state['raw'] = len(m.group(1))
            i += m.end()
            continue
        if c == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == '\\' else 1
            if i >= n:
                state['str'] = True
            i += 1
            continue
        if c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", line[i:])
            if m:
                i += m.end()
                continue
        out.append(c)
        i += 1
    return ''.join(out)


def functions(path):
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    state = {'block': False, 'raw': None, 'str': False}
    code = []
    for line in lines:
        if state['str']:
            # Inside a multi-line string: skip to its end.
            j = 0
            while j < len(line) and line[j] != '"':
                j += 2 if line[j] == '\\' else 1
            if j >= len(line):
                code.append('')
                continue
            state['str'] = False
            line = line[j + 1:]
        code.append(strip(line, state))
    out = []
    for i, line in enumerate(code):
        m = FN.match(line)
        if not m:
            continue
        depth = 0
        opened = False
        end = None
        for j in range(i, len(code)):
            for c in code[j]:
                if c == '{':
                    depth += 1
                    opened = True
                elif c == '}':
                    depth -= 1
                elif c == ';' and not opened and depth == 0:
                    end = -1
                    break
            if end is not None:
                break
            if opened and depth == 0:
                end = j
                break
        if end is None or end < 0:
            continue
        # The comment block above: attributes and comments, up to a blank or code line.
        k = i - 1
        reason = False
        while k >= 0:
            t = lines[k].strip()
            if t.startswith('#[') or t.startswith('#!['):
                k -= 1
                continue
            if t.startswith('//'):
                if re.match(r'^//[/!]?\s*Long because', t):
                    reason = True
                k -= 1
                continue
            break
        out.append((m.group(7), i + 1, end - i + 1, reason))
    return out


def main():
    args = sys.argv[1:]
    limit = 100
    show_all = False
    root = 'src'
    while args:
        a = args.pop(0)
        if a == '--limit':
            limit = int(args.pop(0))
        elif a == '--all':
            show_all = True
        elif a in ('-h', '--help'):
            print(__doc__)
            return 0
        else:
            root = a
    bad = 0
    for d, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if not name.endswith('.rs'):
                continue
            p = os.path.join(d, name)
            for fname, line, length, reason in functions(p):
                if length <= limit:
                    continue
                if not reason:
                    bad += 1
                if show_all or not reason:
                    print(f"{p}:{line}: fn {fname}: {length} lines{' (reason given)' if reason else ''}")
    if bad:
        print(f"{bad} function(s) over {limit} lines without a `Long because` comment", file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
