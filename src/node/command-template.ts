// `--engine-command` templates: split into words like a POSIX shell would (quotes and
// backslashes), without running a shell, so paths with spaces need no escaping and nothing is
// interpreted. Placeholders are replaced inside each word after splitting.

export const COMMAND_PLACEHOLDERS = ["model", "port", "id", "threads", "slots", "context"] as const;
export type CommandPlaceholder = (typeof COMMAND_PLACEHOLDERS)[number];

export class CommandTemplateError extends Error {}

/** Words of `template`; throws on an unterminated quote or an empty template. */
export function splitCommandLine(template: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === "\\" && i + 1 < template.length && '"\\$`'.includes(template[i + 1]!)) word += template[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < template.length) {
      word += template[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new CommandTemplateError(`unterminated ${quote} quote in the engine command template`);
  if (inWord) words.push(word);
  if (words.length === 0) throw new CommandTemplateError("the engine command template is empty");
  return words;
}

/** Placeholders the template uses; unknown `{name}`s are an error (likely a typo). */
export function templatePlaceholders(words: readonly string[]): Set<CommandPlaceholder> {
  const used = new Set<CommandPlaceholder>();
  for (const word of words) {
    for (const m of word.matchAll(/\{([A-Za-z_]+)\}/g)) {
      const name = m[1]!;
      if (!(COMMAND_PLACEHOLDERS as readonly string[]).includes(name)) {
        throw new CommandTemplateError(
          `unknown placeholder {${name}} in the engine command template (known: ${COMMAND_PLACEHOLDERS.map((p) => `{${p}}`).join(", ")})`,
        );
      }
      used.add(name as CommandPlaceholder);
    }
  }
  return used;
}

export function fillTemplate(words: readonly string[], values: Record<CommandPlaceholder, string>): string[] {
  return words.map((w) => w.replace(/\{([A-Za-z_]+)\}/g, (all, name: string) => (name in values ? values[name as CommandPlaceholder] : all)));
}
