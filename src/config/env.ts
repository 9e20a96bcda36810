// `${VAR}` and `${VAR:-default}` expansion on the YAML document itself, so errors keep their line numbers.
// `$${` is a literal `${`. As in a shell, `:-` also applies when the variable is set but empty.
import { isPair, isScalar, isSeq, Scalar, visit, type Document } from 'yaml';

const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/;

export interface UnsetVariable {
  readonly name: string;
  /** Offset of the reference in the file (of its scalar when the scalar's source is not its value verbatim). */
  readonly offset: number;
  /** Key path of the scalar that holds it. */
  readonly path: readonly PropertyKey[];
}

/** Expands references in every string scalar. Returns the unset variables (without defaults) it met. */
export function expandEnv(doc: Document, env: NodeJS.ProcessEnv): UnsetVariable[] {
  const unset: UnsetVariable[] = [];
  visit(doc, {
    Scalar(_key, node, ancestors) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const original = node.value;
      const expanded = original.replace(
        REFERENCE,
        (all: string, name: string | undefined, fallback: string | undefined, index: number) => {
          if (name === undefined) return '${'; // `$${` escapes a literal `${`
          const value = env[name];
          if (value !== undefined && (value !== '' || fallback === undefined)) return value;
          if (fallback !== undefined) return fallback;
          unset.push({ name, offset: referenceOffset(node, index), path: keyPath(ancestors, node) });
          return all;
        },
      );
      // A plain (unquoted) scalar that is only a reference takes the type of its value: `port: ${PORT}` is a number.
      node.value = node.type === Scalar.PLAIN && WHOLE.test(original) ? plainScalarValue(expanded) : expanded;
    },
  });
  return unset;
}

/** Exact offset when the scalar is on one line and its source is its value (plain, or quoted without escapes). */
function referenceOffset(node: Scalar, index: number): number {
  const start = node.range?.[0] ?? 0;
  const value = String(node.value);
  if (value.includes('\n')) return start;
  if (node.type === Scalar.PLAIN) return start + index;
  if (node.type === Scalar.QUOTE_SINGLE && !value.includes("'")) return start + 1 + index;
  if (node.type === Scalar.QUOTE_DOUBLE && !/["\\]/.test(value)) return start + 1 + index;
  return start;
}

function keyPath(ancestors: readonly unknown[], node: unknown): PropertyKey[] {
  const chain = [...ancestors, node];
  const path: PropertyKey[] = [];
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i];
    if (isPair(parent)) path.push(isScalar(parent.key) ? String(parent.key.value) : '?');
    else if (isSeq(parent)) path.push(parent.items.indexOf(chain[i + 1] as never));
  }
  return path;
}

function plainScalarValue(text: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true') return true;
  if (text === 'false') return false;
  return text;
}
