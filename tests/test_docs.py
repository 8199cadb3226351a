"""The manual names only what exists: every ``tools/...`` and ``configs/...``
path, every relative link and every ``--option`` of README.md and
docs/**/*.md.

- **Paths** must exist in the checkout (trailing punctuation stripped).
  Placeholders are skipped: a path with ``<>``, ``{}``, ``[]`` or ``*``, or
  with a component in CAPITALS (``tools/x/CONFIG``). Relative Markdown links
  must resolve from the file that holds them.
- **Options on a command line** (a line of a shell code block, or an inline
  code span that starts with a program) belong to the program the command
  starts with. For an mmgate tool they must be options its argparse parser
  defines, read from the tool's source and from the mmgate module its
  ``main`` / ``parse_args`` come from (``tools/train.py`` ->
  ``mmgate/apis/training.py``); a shell launcher takes the options of the
  Python tool it runs (``tools/dist_train.sh`` -> ``tools/train.py``). A
  command of another program (pip, pytest, torchrun, git, mim ...) is not
  checked: only when the command starts with that program.
- **Options named in the text** (outside a command line) must be options of
  some mmgate tool. One that none defines is exempt only after a command
  of another program in the same paragraph (list item, table row, code
  block): ``python -m mim search mmgate`` ... ``--field``.

The checker runs from the checkout that holds this file, so it can be run
on a scratch copy with another README.
"""
import ast
import functools
import glob
import os.path as osp
import re
import shlex
from typing import Dict, FrozenSet, List, NamedTuple, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Programs other than mmgate's tools: their options are not checked.
EXTERNAL = frozenset({
    'apt', 'apt-get', 'cat', 'cd', 'conda', 'cp', 'curl', 'docker', 'dpkg',
    'echo', 'export', 'flake8', 'git', 'grep', 'isort', 'ls', 'mim', 'mkdir',
    'mv', 'nvidia-smi', 'objdump', 'pip', 'pip3', 'pre-commit', 'pytest',
    'python -c', 'rm', 'sed', 'setup.py', 'source', 'srun', 'strip', 'tar',
    'torchrun', 'venv', 'wget', 'yapf'
})
# Words that run the command after them.
_WRAPPERS = frozenset({'bash', 'sh', 'env', 'exec', 'nohup', 'sudo', 'time'})
# Tools that hand the options they do not define to another tool
# (``parse_known_args``).
FORWARDS = {'tools/misc/run_demo.py': 'tools/train.py'}
SHELL_BLOCKS = frozenset({'', 'bash', 'sh', 'shell', 'console'})

_OPTION = re.compile(r'(?<![\w-])--[A-Za-z][\w-]*')
_PATH = re.compile(r'(?<![\w./-])(?:tools|configs)/[\w./{}<>*\[\],+=~-]*')
_LINK = re.compile(r'\]\(([^)\s]+)\)')
_SPAN = re.compile(r'(`+)(.+?)(?<!`)\1(?!`)')
_ENV = re.compile(r'^[A-Za-z_]\w*=')
_PYTHON = re.compile(r'^(?:\S*/)?python[\d.]*$|^\$\{?PYTHON\}?$')
_CAPS = re.compile(r'^[A-Z][A-Z0-9_]*(?:\.\w+)?$')
_NEW_PARAGRAPH = re.compile(r'^\s*(?:#{1,6}\s|\||[-*+]\s|\d+\.\s)')
_SEPARATORS = frozenset({'&&', '||', ';', '|', '&'})


class Problem(NamedTuple):
    file: str
    line: int
    what: str

    def __str__(self) -> str:
        return f'{self.file}:{self.line}: {self.what}'


# ---- the options of mmgate's tools -------------------------------------


@functools.lru_cache(maxsize=None)
def _tree(path: str) -> ast.Module:
    with open(path, encoding='utf-8') as f:
        return ast.parse(f.read(), path)


def _module_file(root: str, module: str) -> Optional[str]:
    base = osp.join(root, *module.split('.'))
    for path in (base + '.py', osp.join(base, '__init__.py')):
        if osp.isfile(path):
            return path
    return None


def _imported_module(root: str, path: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ''
    package = osp.relpath(osp.dirname(path), root).split(osp.sep)
    package = package[:len(package) - node.level + 1]
    return '.'.join(package + ([node.module] if node.module else []))


def _defining_file(root: str, path: str, name: str) -> Optional[str]:
    """The file that defines ``name`` as seen from ``path`` (following
    ``from .x import name`` re-exports)."""
    for node in _tree(path).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and \
                node.name == name:
            return path
    for node in _tree(path).body:
        if not isinstance(node, ast.ImportFrom):
            continue
        for alias in node.names:
            if (alias.asname or alias.name) == name:
                target = _module_file(root, _imported_module(root, path, node))
                return target and _defining_file(root, target, alias.name)
    return None


def _argparse_options(path: str) -> FrozenSet[str]:
    """The ``--options`` of the command-line parser a file builds (in its
    ``parse_args``, else its ``main``, else at module level), and
    ``--help`` where that parser has it."""
    tree = _tree(path)
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    builder = funcs.get('parse_args') or funcs.get('main') or tree
    found = set()
    for node in ast.walk(builder):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else \
            getattr(func, 'id', '')
        if name == 'add_argument':
            found.update(
                a.value for a in node.args if isinstance(a, ast.Constant)
                and str(a.value).startswith('--'))
        elif name == 'ArgumentParser' and not any(k.arg == 'add_help'
                                                  for k in node.keywords):
            found.add('--help')
    return frozenset(found)


def _python_options(root: str, path: str) -> FrozenSet[str]:
    """A Python tool's options: its own parser's and those of the mmgate
    modules its ``main`` / ``parse_args`` / ``add_*options`` come from."""
    options = set(_argparse_options(path))
    for node in ast.walk(_tree(path)):
        if not isinstance(node, ast.ImportFrom):
            continue
        module = _imported_module(root, path, node)
        target = module.startswith('mmgate') and _module_file(root, module)
        for alias in node.names if target else ():
            if alias.name in ('main', 'parse_args') or re.fullmatch(
                    r'add_\w*options', alias.name):
                where = _defining_file(root, target, alias.name)
                if where:
                    options |= _python_options(root, where)
    return frozenset(options)


def _shell_runs(root: str, path: str) -> Tuple[List[str], FrozenSet[str]]:
    """The Python tools a shell launcher runs, and its own ``--options``
    (``[ "$1" = "--fix" ]``, ``--fix)`` in a ``case``)."""
    with open(path, encoding='utf-8') as f:
        code = [
            ln.split(' #')[0] for ln in f if not ln.lstrip().startswith('#')
        ]
    runs = []
    for name in re.findall(r'[\w./-]*\w\.py\b', '\n'.join(code)):
        name = name.lstrip('/')
        for cand in (osp.join(root, name), osp.join(osp.dirname(path), name)):
            rel = osp.relpath(cand, root)
            if osp.isfile(cand) and rel.startswith('tools') and \
                    rel not in runs:
                runs.append(rel)
    own = re.findall(r'=\s*"?(--[\w-]+)"?\s*\]|^\s*(--[\w-]+)\)',
                     '\n'.join(code), re.M)
    return runs, frozenset(a or b for a, b in own)


@functools.lru_cache(maxsize=None)
def tool_options(root: str, tool: str) -> Optional[FrozenSet[str]]:
    """The options ``tool`` (a path under ``tools/``, a console script or a
    Python module of the checkout) accepts, or None when it is none."""
    scripts = console_scripts(root)
    if tool in scripts:
        module, func = scripts[tool]
        where = _module_file(root, module)
        where = where and _defining_file(root, where, func)
        return _python_options(root, where) if where else None
    path = osp.join(root, tool)
    if not osp.isfile(path) or not tool.endswith(('.py', '.sh')):
        return None
    if tool.endswith('.sh'):
        runs, options = _shell_runs(root, path)
        for rel in runs:
            options |= tool_options(root, rel) or frozenset()
        return options
    options = _python_options(root, path)
    if tool in FORWARDS:
        options |= tool_options(root, FORWARDS[tool])
    return options


@functools.lru_cache(maxsize=None)
def console_scripts(root: str) -> Dict[str, Tuple[str, str]]:
    """``setup.py``'s console scripts: name -> (module, function)."""
    with open(osp.join(root, 'setup.py'), encoding='utf-8') as f:
        text = f.read()
    return {
        name: (module, func)
        for name, module, func in re.findall(
            r"'([\w-]+)\s*=\s*([\w.]+):(\w+)'", text)
    }


@functools.lru_cache(maxsize=None)
def all_tools(root: str) -> Tuple[str, ...]:
    found = [
        osp.relpath(p, root) for ext in ('py', 'sh') for p in glob.glob(
            osp.join(root, 'tools', '**', f'*.{ext}'), recursive=True)
    ]
    return tuple(sorted(found)) + tuple(console_scripts(root))


@functools.lru_cache(maxsize=None)
def tool_basenames(root: str) -> Dict[str, str]:
    """``train.py`` -> ``tools/train.py``, for the names only one tool
    has."""
    names: Dict[str, List[str]] = {}
    for tool in all_tools(root):
        names.setdefault(osp.basename(tool), []).append(tool)
    return {k: v[0] for k, v in names.items() if len(v) == 1 and '.' in k}


# ---- reading Markdown --------------------------------------------------


class Paragraph(NamedTuple):
    line: int
    text: str
    shell: bool  # the lines of a shell code block: each one a command line


def paragraphs(markdown: str) -> List[Paragraph]:
    """Paragraphs (a list item, a table row, a heading and a code block are
    each one) with the line they start on."""
    out: List[Paragraph] = []
    buf: List[str] = []
    start, fence, shell = 0, None, False
    for no, line in enumerate(markdown.splitlines(), 1):
        stripped = line.strip()
        if fence is not None:  # in a code block
            if stripped.startswith(fence):
                out.append(Paragraph(start, '\n'.join(buf), shell))
                buf, fence = [], None
            else:
                buf.append(line)
            continue
        opens = stripped.startswith(('```', '~~~'))
        if buf and (opens or not stripped or _NEW_PARAGRAPH.match(line)):
            out.append(Paragraph(start, '\n'.join(buf), False))
            buf = []
        if opens:
            fence = stripped[:3]
            shell = stripped[3:].strip().lower() in SHELL_BLOCKS
            start = no + 1
        elif stripped:
            start = start if buf else no
            buf.append(line)
    if buf:
        out.append(
            Paragraph(start, '\n'.join(buf), fence is not None and shell))
    return out


def _words(command: str) -> List[str]:
    try:
        lex = shlex.shlex(command, posix=True, punctuation_chars=';&|')
        return list(lex)
    except ValueError:  # an unbalanced quote: plain words
        return re.sub(r'(&&|\|\||[;|])', r' \1 ', command).split()


def commands(line: str) -> List[List[str]]:
    """The commands of a command line, as words (``a && b | c``: three)."""
    out, cur = [], []
    for word in _words(line):
        if word in _SEPARATORS:
            out.append(cur)
            cur = []
        else:
            cur.append(word)
    return [c for c in out + [cur] if c]


def program(root: str, words: List[str]) -> Tuple[str, str, List[str]]:
    """``(kind, name, arguments)`` of a command: kind ``'tool'`` (name: a
    path under tools/, a console script or a module of the checkout),
    ``'external'`` or ``'unknown'``."""
    i = 0
    while i < len(words) and (_ENV.match(words[i]) or words[i] in _WRAPPERS):
        i += 1
    if i == len(words):
        return 'unknown', '', []
    if _PYTHON.match(words[i]):
        i += 1
        while i < len(words) and words[i] in ('-u', '-B', '-O', '-E', '-s'):
            i += 1
        if i == len(words):
            return 'external', 'python', []
        if words[i] == '-c':
            return 'external', 'python -c', words[i + 1:]
        if words[i] == '-m' and i + 1 < len(words):
            module = words[i + 1]
            path = _module_file(root, module)
            if path:
                return 'tool', osp.relpath(path, root), words[i + 2:]
            return 'external', module.split('.')[0], words[i + 2:]
    name, rest = words[i], words[i + 1:]
    path = re.sub(r'^\.?/', '', name)
    if path.startswith('tools/'):
        return 'tool', path, rest
    base = osp.basename(name)
    if base in tool_basenames(root):
        return 'tool', tool_basenames(root)[base], rest
    if base in console_scripts(root):
        return 'tool', base, rest
    if base in EXTERNAL:
        return 'external', base, rest
    return 'unknown', name, rest


def _named_paths(text: str) -> List[str]:
    text = re.sub(r'\.\.\./(?=(?:tools|configs)/)', ' ', text)
    return [m.group().rstrip('.,:;!?)') for m in _PATH.finditer(text)]


def _is_placeholder(path: str) -> bool:
    return bool(re.search(r'[<>{}*\[\]]', path)) or any(
        _CAPS.match(part) and part != 'README.md' for part in path.split('/'))


def command_lines(block: str) -> List[Tuple[int, str]]:
    """The lines of a shell block, ``\\`` continuations joined, with the
    offset of their first line."""
    out, lines, i = [], block.split('\n'), 0
    while i < len(lines):
        start, line = i, lines[i]
        while line.rstrip().endswith('\\') and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + ' ' + lines[i]
        out.append((start, line))
        i += 1
    return out


# ---- the checks --------------------------------------------------------


def check_paths(markdown: str,
                where: str,
                root: str = ROOT,
                folder: Optional[str] = None) -> List[Problem]:
    """Named ``tools/`` / ``configs/`` paths and relative links that do not
    exist (links resolved from ``folder``, the Markdown file's)."""
    problems = []
    for no, line in enumerate(markdown.splitlines(), 1):
        for path in _named_paths(line):
            if not _is_placeholder(path) and \
                    not osp.exists(osp.join(root, path)):
                problems.append(Problem(where, no, f'{path} does not exist'))
        for link in _LINK.findall(line):
            target, _, anchor = link.partition('#')
            if re.match(r'^[a-z]+:', target):
                continue
            full = osp.normpath(osp.join(folder or root, target)) \
                if target else None
            if full and not osp.exists(full):
                problems.append(
                    Problem(where, no, f'link {target} does not resolve'))
            elif anchor and (full is None or full.endswith('.md')):
                text = markdown
                if full:
                    with open(full, encoding='utf-8') as f:
                        text = f.read()
                if anchor not in heading_anchors(text):
                    problems.append(
                        Problem(where, no,
                                f'link {link}: no heading #{anchor}'))
    return problems


def heading_anchors(markdown: str) -> List[str]:
    """The anchors GitHub gives a file's headings (lower case, punctuation
    but ``-`` dropped, spaces as ``-``)."""
    anchors, fence = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(('```', '~~~')):
            fence = not fence
        elif not fence and re.match(r'#{1,6}\s', line):
            title = line.lstrip('#').strip().lower()
            anchors.append(re.sub(r'[^\w\- ]', '', title).replace(' ', '-'))
    return anchors


def _check_command(root, words, where, line, events):
    kind, name, args = program(root, words)
    options = _OPTION.findall(' '.join(args))
    if kind == 'tool':
        accepted = tool_options(root, name)
        if accepted is None:  # a missing path is check_paths' to report
            return [Problem(where, line, f'{name} is no tool of mmgate')
                    ] if options and not _is_placeholder(name) else []
        events.append(('tool', name))
        return [
            Problem(where, line, f'{name} has no option {o}') for o in options
            if o not in accepted
        ]
    if kind == 'external':
        events.append(('external', name))
    elif options:
        why = (f'{name}: not a tool of mmgate nor a program in '
               f'tests/test_docs.py EXTERNAL, its options {options} cannot '
               'be checked')
        return [Problem(where, line, why)]
    return []


def _check_paragraph(root: str, par: Paragraph, where: str):
    problems, events, prose = [], [], []
    if par.shell:
        for offset, line in command_lines(par.text):
            for words in commands(re.sub(r'^\s*\$\s', '', line)):
                problems += _check_command(root, words, where,
                                           par.line + offset, events)
    else:
        text = par.text.replace('\n', ' ')  # offsets stay the text's

        def line_of(pos):
            return par.line + par.text.count('\n', 0, pos)

        def options_in(start, end):
            return [(o.group(), len(events), line_of(o.start()))
                    for o in _OPTION.finditer(text, start, end)]

        last = 0
        for span in _SPAN.finditer(text):
            prose += options_in(last, span.start())
            last = span.end()
            for words in commands(span.group(2)):
                if program(root, words)[0] == 'unknown':
                    prose += [(o, len(events), line_of(span.start()))
                              for o in _OPTION.findall(' '.join(words))]
                else:
                    problems += _check_command(root, words, where,
                                               line_of(span.start()), events)
        prose += options_in(last, len(text))
    accepted = frozenset().union(*(tool_options(root, t)
                                   for t in all_tools(root)))
    for option, before, line in prose:
        after_external = any(k == 'external' for k, _ in events[:before])
        if option not in accepted and not after_external:
            problems.append(
                Problem(where, line, f'{option} is no option of any tool'))
    return problems


def check_options(markdown: str,
                  where: str,
                  root: str = ROOT) -> List[Problem]:
    """Options that the tool they are given to does not define."""
    problems = []
    for par in paragraphs(markdown):
        problems += _check_paragraph(root, par, where)
    return problems


def doc_files(root: str = ROOT) -> List[str]:
    files = [osp.join(root, 'README.md')] + sorted(
        glob.glob(osp.join(root, 'docs', '**', '*.md'), recursive=True))
    return [f for f in files if osp.isfile(f)]


def check_docs(root: str = ROOT) -> List[Problem]:
    problems = []
    for path in doc_files(root):
        with open(path, encoding='utf-8') as f:
            text = f.read()
        rel = osp.relpath(path, root)
        problems += check_paths(text, rel, root, osp.dirname(path))
        problems += check_options(text, rel, root)
    return problems


# ---- tests -------------------------------------------------------------


def test_docs_name_what_exists():
    assert doc_files(), 'no README.md'
    problems = check_docs()
    assert not problems, '\n' + '\n'.join(map(str, problems))


def test_tool_options_come_from_the_delegated_parsers():
    train = tool_options(ROOT, 'tools/train.py')
    # tools/train.py defines none itself: mmgate/apis/training.py does
    assert {'--work-dir', '--resume', '--amp', '--check-data'} <= train
    assert tool_options(ROOT, 'tools/dist_train.sh') >= train
    assert '--task' in tool_options(ROOT, 'mmgate-finetune')
    assert '--fix' in tool_options(ROOT, 'tools/lint.sh')
    for tool, target in FORWARDS.items():
        with open(osp.join(ROOT, tool), encoding='utf-8') as f:
            assert 'parse_known_args' in f.read(), (
                f'{tool} no longer forwards options to {target}')


def test_checker_flags_a_missing_path_and_an_unknown_option():
    doc = '\n'.join([
        'Run `tools/no_such_tool.py` on `configs/no/such.py`; see',
        '[the guide](no_such_guide.md), [faults](docs/en/user_guides/'
        'faults.md#no-such-heading). `configs/<family>/README.md` and',
        '`tools/x/CONFIG` are placeholders.',
        '',
        '```bash',
        'python tools/train.py configs/demo/cls_skipresnet18_demo.py \\',
        '    --work-dir w --no-such-option 1',
        'OMP_NUM_THREADS=1 bash tools/dist_train.sh CONFIG 2 --amp',
        'pip install --no-deps x && python tools/test.py C K --no-deps',
        'python -m pytest tests -q -p no:cacheprovider --lf',
        'frobnicate --fast',
        '```',
        '',
        'Pass `--bogus` to `tools/train.py`; `--amp` works.',
        '',
        'openmim: `python -m mim search mmgate` (add `--field`).',
    ])
    paths = [p.what for p in check_paths(doc, 'doc.md', ROOT, ROOT)]
    assert paths == [
        'tools/no_such_tool.py does not exist',
        'configs/no/such.py does not exist',
        'link no_such_guide.md does not resolve',
        'link docs/en/user_guides/faults.md#no-such-heading: '
        'no heading #no-such-heading'
    ]
    options = [p.what for p in check_options(doc, 'doc.md')]
    assert options == [
        'tools/train.py has no option --no-such-option',
        'tools/test.py has no option --no-deps',
        "frobnicate: not a tool of mmgate nor a program in "
        "tests/test_docs.py EXTERNAL, its options ['--fast'] cannot be "
        'checked',
        '--bogus is no option of any tool',
    ]
