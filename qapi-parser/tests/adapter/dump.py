"""Prints a QEMU release's own reading of a QAPI schema as normalized text.

Usage: python3 dump.py SCRIPTS_DIR SCHEMA_FILE

SCRIPTS_DIR is the release's `scripts/` folder (its `qapi` package is imported from
there). The text is the one tests/releases.rs renders from qapi-parser's model:
one line per entity, sorted by name, then one indented line per member, enum value,
branch and feature, in schema order. It covers names, kinds, types, optionality,
`if` conditions and features, and is stable across releases (5.2 to 10.2).
"""

import sys


def cond(ifcond):
    """An `if` condition as text: NAME, all(..), any(..), not(..); '' for none."""
    # 6.0+ wraps the tree in QAPISchemaIfCond; 5.2 has a list of names (all of them).
    tree = getattr(ifcond, 'ifcond', ifcond)
    if not tree:
        return ''
    if isinstance(tree, list):
        tree = tree[0] if len(tree) == 1 else {'all': tree}
    return render(tree)


def render(tree):
    if isinstance(tree, str):
        return tree
    (op, arg), = tree.items()
    if op == 'not':
        return 'not(%s)' % render(arg)
    return '%s(%s)' % (op, ','.join(render(t) for t in arg))


def suffix(ifcond, features):
    out = ''
    c = cond(ifcond)
    if c:
        out += ' if=' + c
    for f in features or []:
        out += ' feature=' + f.name
        c = cond(f.ifcond)
        if c:
            out += '[if=%s]' % c
    return out


def name(typ):
    return typ.name if typ is not None else '-'


def entity_lines(ent, schema_mod):
    s = schema_mod
    feats = getattr(ent, 'features', [])
    head = suffix(ent.ifcond, feats)
    if isinstance(ent, s.QAPISchemaBuiltinType):
        return ['builtin %s %s' % (ent.name, ent.json_type())]
    if isinstance(ent, s.QAPISchemaEnumType):
        lines = ['enum %s prefix=%s%s' % (ent.name, ent.prefix or '-', head)]
        for m in ent.members:
            lines.append('  value %s%s' % (m.name, suffix(m.ifcond, getattr(m, 'features', []))))
        return lines
    if isinstance(ent, s.QAPISchemaArrayType):
        return ['array %s %s%s' % (ent.name, ent.element_type.name, suffix(ent.ifcond, []))]
    if isinstance(ent, s.QAPISchemaObjectType):
        lines = ['object %s base=%s%s' % (ent.name, name(ent.base), head)]
        for m in ent.local_members:
            lines.append('  member %s %s%s%s' % (
                m.name, m.type.name, ' optional' if m.optional else '',
                suffix(m.ifcond, getattr(m, 'features', []))))
        # 9.1+: `branches`; before: `variants`.
        variants = getattr(ent, 'branches', None) or getattr(ent, 'variants', None)
        if variants:
            lines.append('  tag %s' % variants.tag_member.name)
            for v in variants.variants:
                lines.append('  case %s %s%s' % (v.name, v.type.name, suffix(v.ifcond, [])))
        return lines
    if isinstance(ent, s.QAPISchemaAlternateType):
        lines = ['alternate %s%s' % (ent.name, head)]
        variants = getattr(ent, 'alternatives', None) or getattr(ent, 'variants', None)
        lines.append('  tag %s' % variants.tag_member.name)
        for v in variants.variants:
            lines.append('  case %s %s%s' % (v.name, v.type.name, suffix(v.ifcond, [])))
        return lines
    if isinstance(ent, s.QAPISchemaCommand):
        flags = [f for f in ('gen', 'success_response', 'boxed', 'allow_oob',
                             'allow_preconfig', 'coroutine')
                 if getattr(ent, f, False)]
        return ['command %s arg=%s ret=%s flags=%s%s' % (
            ent.name, name(ent.arg_type), name(ent.ret_type), ','.join(flags), head)]
    if isinstance(ent, s.QAPISchemaEvent):
        return ['event %s arg=%s%s%s' % (
            ent.name, name(ent.arg_type), ' boxed' if ent.boxed else '', head)]
    return []  # includes


def main():
    scripts, path = sys.argv[1], sys.argv[2]
    sys.path.insert(0, scripts)
    from qapi import schema as schema_mod
    from qapi.error import QAPIError
    try:
        schema = schema_mod.QAPISchema(path)
    except QAPIError as err:
        print(err, file=sys.stderr)
        sys.exit(1)
    # Includes have no name (10.x) or None (before): they are not compared.
    entities = [e for e in schema._entity_list
                if not isinstance(e, schema_mod.QAPISchemaInclude)]
    entities.sort(key=lambda e: e.name)
    out = []
    for ent in entities:
        out.extend(entity_lines(ent, schema_mod))
    sys.stdout.write(''.join(line + '\n' for line in out))


main()
