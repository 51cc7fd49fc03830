"""Derived files of the shared QEMU material, made by QEMU's own front end.

Usage: python3 shared_qemu.py RELEASE DIR
  RELEASE  the QEMU 10.0.2 release sources: its scripts/qapi is the front end, its
           tests/qapi-schema/ has test-qapi.py (the dump), meson.build (which cases are
           listed) and every case
  DIR      the assembled 10.0.2 folder: reads qapi/, qga/, storage-daemon/qapi/ and
           tests/qapi-schema/, writes golden/q10-*.out and tests/ground-truth.tsv
"""
import io
import os
import re
import sys
import contextlib
import importlib.util

release, root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
release_suite = os.path.join(release, 'tests', 'qapi-schema')
sys.path.insert(0, os.path.join(release, 'scripts'))
spec = importlib.util.spec_from_file_location(
    'test_qapi', os.path.join(release_suite, 'test-qapi.py'))
test_qapi = importlib.util.module_from_spec(spec)
spec.loader.exec_module(test_qapi)
from qapi.error import QAPIError, QAPISemError, QAPISourceError
from qapi.parser import QAPIParseError
from qapi.parser import QAPISchemaParser
from qapi.expr import check_exprs
from qapi.schema import QAPISchema


def dump(folder):
    """test-qapi.py's dump of FOLDER/qapi-schema.json, module names relative to FOLDER."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            test_qapi.test_frontend('qapi-schema.json')
        return out.getvalue()
    finally:
        os.chdir(cwd)


os.makedirs(os.path.join(root, 'golden'), exist_ok=True)
for folder, name in [('qapi', 'q10-qapi.out'), ('qga', 'q10-qga.out'),
                     ('storage-daemon/qapi', 'q10-storage-daemon.out')]:
    text = dump(os.path.join(root, folder))
    with open(os.path.join(root, 'golden', name), 'w', encoding='utf-8') as f:
        f.write(text)

suite = os.path.join(root, 'tests', 'qapi-schema')
with open(os.path.join(release_suite, 'meson.build'), encoding='utf-8') as f:
    meson = f.read()
listed = set(re.findall(r"'([^']+)\.json'", meson))


def escape(text):
    return text.replace('\\', '\\\\').replace('\n', '\\n').replace('\t', '\\t')


def phase_of(fname):
    """(phase, error) of the first error the reference reports for FNAME, or (None, None)."""
    try:
        parser = QAPISchemaParser(fname)
    except QAPIParseError as err:
        return 'parse', err
    except QAPISemError as err:
        return 'parse-sem', err
    except OSError:
        # The parser alone lets this through; QAPISchema words it as QEMU prints it.
        try:
            QAPISchema(fname)
        except QAPIError as err:
            return 'io', err
        raise
    try:
        check_exprs(parser.exprs)
    except QAPIError as err:
        return 'expr', err
    try:
        QAPISchema(fname)
    except QAPIError as err:
        # A definition clashing with an earlier one ('schema-def') is raised where the
        # schema defines each entity; every other check of the schema is 'schema'.
        tb = err.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        defining = tb.tb_frame.f_code.co_name in ('_def_definition', '_def_entity')
        return ('schema-def' if defining else 'schema'), err
    return None, None


def row(name, case_dir):
    where = 'meson' if name in listed else 'orphan'
    if where == 'orphan' and not os.path.exists(os.path.join(case_dir, name + '.json')):
        return [name, 'no-json', '', 'stale .err without .json', '', '', '', '', '', where, '']
    cwd = os.getcwd()
    os.chdir(case_dir)
    try:
        phase, err = phase_of(name + '.json')
    finally:
        os.chdir(cwd)
    if err is None:
        return [name, 'accept', '', '', '', '', '', '', '', where, '']
    info = getattr(err, 'info', None)
    msg = err.msg if isinstance(err, QAPISourceError) else str(err)
    line = col = fname = context = chain = ''
    if info is not None:
        line = str(info.line or '')
        fname = info.fname
        if info.defn_meta:
            context = "In %s '%s'" % (info.defn_meta, info.defn_name)
        links, parent = [], info.parent
        while parent is not None:
            links.append('%s:%s' % (parent.fname, parent.line))
            parent = parent.parent
        chain = ' <- '.join(links)
    if getattr(err, 'col', None) is not None:
        col = str(err.col)
    return [name, 'reject', line, escape(msg.split('\n')[0]), col, fname, context, chain,
            escape(msg), where, phase]


names = {f[:-4] for f in os.listdir(suite) if f.endswith('.err')}
names |= {f[:-4] for f in os.listdir(release_suite) if f.endswith('.err') and f[:-4] not in listed}
header = ['name', 'result', 'line', 'message', 'col', 'file', 'context', 'included_from',
          'full_message', 'listed', 'phase']
with open(os.path.join(root, 'tests', 'ground-truth.tsv'), 'w', encoding='utf-8') as f:
    f.write('\t'.join(header) + '\n')
    for name in sorted(names):
        case_dir = suite if os.path.exists(os.path.join(suite, name + '.err')) else release_suite
        f.write('\t'.join(row(name, case_dir)) + '\n')
