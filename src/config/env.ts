// `${VAR}` and `${VAR:-default}` expansion on the YAML document itself, so errors keep their line numbers.
import { isScalar, visit, type Document, Scalar } from 'yaml';

const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/;

export interface UnsetVariable {
  readonly name: string;
  readonly offset: number;
}

/** Expands references in every string scalar. Returns the unset variables (without defaults) it met. */
export function expandEnv(doc: Document, env: NodeJS.ProcessEnv): UnsetVariable[] {
  const unset: UnsetVariable[] = [];
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const original = node.value;
      const offset = node.range?.[0] ?? 0;
      const expanded = original.replace(REFERENCE, (all, name: string | undefined, fallback: string | undefined) => {
        if (name === undefined) return '${'; // `$${` escapes a literal `${`
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        unset.push({ name, offset });
        return all;
      });
      // A plain (unquoted) scalar that is only a reference takes the type of its value: `port: ${PORT}` is a number.
      if (node.type === Scalar.PLAIN && WHOLE.test(original)) {
        node.value = plainScalarValue(expanded);
      } else {
        node.value = expanded;
      }
    },
  });
  return unset;
}

function plainScalarValue(text: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true') return true;
  if (text === 'false') return false;
  return text;
}

export { isScalar };
