// Every dialect the router speaks, registered alike by main.ts.
import { anthropicDialect } from "./anthropic/routes.js";
import type { Dialect } from "./dialect.js";
import { ollamaDialect } from "./ollama/routes.js";
import { openAiDialect } from "./openai/routes.js";
import { responsesDialect } from "./responses/routes.js";

export const DIALECTS: readonly Dialect[] = [openAiDialect, responsesDialect, anthropicDialect, ollamaDialect];
