"""What PyPI pySigma makes of Sigma rule files, as JSON, for comparison with mfascope's parse.

Usage: pysigma_dump.py FILE... ; prints {file: {"accepted": bool, "error": str|None,
"rules": [...], "correlations": [...]}} where a rule is {id, title, level, product, service,
conditions, items: sorted [detection, field, modifiers, values]} and a correlation is
{id, title, type, rules, group_by, timespan, condition}.
"""
import json
import sys

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaDetection


def modifier(m):
    return m.__name__.removeprefix("Sigma").removesuffix("Modifier").lower()


def items(name, detection):
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from items(name, item)
            continue
        values = [str(v) for v in (item.original_value or [])]
        yield [name, item.field, [modifier(m) for m in item.modifiers], values]


def dump(path):
    text = open(path, encoding="utf-8").read()
    try:
        c = SigmaCollection.from_yaml(text, collect_errors=True)
    except Exception as e:  # pySigma raises on unresolved correlation references
        return {"accepted": False, "error": f"{type(e).__name__}: {e}", "rules": [], "correlations": []}
    errors = list(c.errors)
    for r in c.rules:
        # pySigma parses conditions lazily; a backend would parse them first thing.
        try:
            for cond in getattr(getattr(r, "detection", None), "parsed_condition", []):
                cond.parsed
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
    if errors:
        return {"accepted": False, "error": str(errors[0]), "rules": [], "correlations": []}
    rules, correlations = [], []
    for r in c.rules:
        if isinstance(r, SigmaCorrelationRule):
            cond = r.condition
            correlations.append({
                "id": str(r.id) if r.id else None, "title": r.title,
                "type": r.type.name.lower(), "rules": [x.reference for x in r.rules],
                "group_by": list(r.group_by or []), "timespan": r.timespan.spec,
                "condition": {"op": cond.op.name.lower(), "count": cond.count,
                              "field": cond.fieldref},
            })
            continue
        its = sorted(i for name, d in r.detection.detections.items() for i in items(name, d))
        rules.append({
            "id": str(r.id) if r.id else None, "title": r.title,
            "level": r.level.name.lower() if r.level else None,
            "product": r.logsource.product, "service": r.logsource.service,
            "conditions": list(r.detection.condition), "items": its,
        })
    return {"accepted": True, "error": None, "rules": rules, "correlations": correlations}


print(json.dumps({p: dump(p) for p in sys.argv[1:]}, default=str))
