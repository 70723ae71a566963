import YAML from 'yaml';

/**
 * A scenario as a YAML file under `#` heading lines: sections in block style, the small values
 * inside them (a range, `{kind: all}`, a fault) on one line each, as a person would write them.
 */
export function scenarioYaml(heading: readonly string[], scenario: object): string {
  // A preset may share one object between fields: write it out twice, not as an &anchor.
  const doc = new YAML.Document(scenario, { aliasDuplicateObjects: false });
  YAML.visit(doc, {
    Map(_, map, path) {
      // path: [document, root map, pair] for a section; anything deeper is a value in one.
      if (path.length > 3 && map.items.every((p) => YAML.isScalar(p.value))) map.flow = true;
    },
  });
  return heading.map((h) => `# ${h}\n`).join('') + doc.toString({ lineWidth: 0 });
}
