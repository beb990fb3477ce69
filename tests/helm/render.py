"""Lints and renders charts/traverse with the Helm SDK (helm-python-sdk), offline.

    render.py lint CHART [-f VALUES]... [--set-json JSON]...
    render.py render CHART OUT_DIR [-f VALUES]... [--set-json JSON]... [--name N] [--namespace NS]

Values files and --set-json objects are merged in order, later ones winning, as
`helm -f a.yaml -f b.yaml` does. `lint` is strict (warnings are errors) and exits 1 on any
finding above info. `render` writes every rendered document to OUT_DIR as
`NN-<kind>-<name>.yaml` (one document per file) and NOTES.txt; a template that fails
(`fail`, a bad value) exits 1 with Helm's message on stderr.
"""

import argparse
import json
import os
import re
import sys

import helm_python
import yaml
from helm_python import chart as helm_chart

KUBE_VERSION = "v1.30.0"


def merge(base, override):
    """Deep merge of maps; any other value in `override` replaces the one in `base`."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base.get(key), value) if key in base else value
        return merged
    return override


def load_values(args):
    values = {}
    for path in args.values or []:
        with open(path, encoding="utf-8") as file:
            values = merge(values, yaml.safe_load(file) or {})
    for text in args.set_json or []:
        values = merge(values, json.loads(text))
    return values


def lint(args):
    report = helm_chart.lint(args.chart, load_values(args), strict=True, kube_version=KUBE_VERSION)
    findings = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    for message in report.get("messages", []):
        print(f"[{message.get('severity')}] {message.get('path')}: {message.get('error')}")
    for error in report.get("errors", []):
        print(f"error: {error}")
    if findings or report.get("errors"):
        print("lint: failed", file=sys.stderr)
        return 1
    print(f"lint: {report.get('total_charts_linted')} chart(s) linted, no findings above info")
    return 0


def documents(text):
    """The non-empty YAML documents of one rendered template."""
    for part in re.split(r"(?m)^---[ \t]*$", text):
        if part.strip() and yaml.safe_load(part) is not None:
            yield part.strip("\n") + "\n"


def render(args):
    values = load_values(args)
    try:
        with helm_python.Chart.load(args.chart) as chart:
            rendered = chart.render(values, name=args.name, namespace=args.namespace,
                                    is_install=True)
    except helm_python.HelmError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    count = 0
    for template in sorted(rendered):
        text = rendered[template]
        if template.endswith("NOTES.txt"):
            with open(os.path.join(args.out_dir, "NOTES.txt"), "w", encoding="utf-8") as file:
                file.write(text)
            continue
        for document in documents(text):
            parsed = yaml.safe_load(document)
            if not isinstance(parsed, dict):
                print(f"error: {template}: a document that is not a map", file=sys.stderr)
                return 1
            kind = str(parsed.get("kind", "unknown")).lower()
            name = str((parsed.get("metadata") or {}).get("name", "unnamed"))
            namespace = (parsed.get("metadata") or {}).get("namespace")
            if namespace:
                name = f"{namespace}-{name}"
            count += 1
            path = os.path.join(args.out_dir, f"{count:02d}-{kind}-{name}.yaml")
            with open(path, "w", encoding="utf-8") as file:
                file.write(document)
            print(path)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("lint", "render"):
        sub = commands.add_parser(command)
        sub.add_argument("chart")
        if command == "render":
            sub.add_argument("out_dir")
            sub.add_argument("--name", default="traverse")
            sub.add_argument("--namespace", default="traverse")
        sub.add_argument("-f", "--values", action="append")
        sub.add_argument("--set-json", action="append")
    args = parser.parse_args()
    helm_python.disable_logging()
    return lint(args) if args.command == "lint" else render(args)


if __name__ == "__main__":
    sys.exit(main())
