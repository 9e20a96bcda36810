// POST /api/config/validate: a candidate config, YAML or JSON: the problems `turnpike validate` prints, as JSON;
// nothing is applied.
import { z } from 'zod';
import { ConfigError, parseConfigText } from '../../config/loader.ts';
import { LOAD_OPTIONS } from '../../runtime/config-checks.ts';
import { configDirOf } from '../../runtime/open-listener.ts';
import { CONFIG_BODY_LIMIT, readText, sendJson } from '../admin-http.ts';
import { defineAdminEndpoint } from '../endpoint.ts';

/** The body of POST /api/config/validate is a config document (YAML or JSON), not a JSON object of its own. */
const candidate = z.string().meta({ description: 'a config document, YAML or JSON' });

export const validateConfig = defineAdminEndpoint({
  method: 'POST',
  path: '/api/config/validate',
  auth: 'token',
  summary: 'checks a candidate config (YAML or JSON body) as `turnpike validate` does; applies nothing',
  body: candidate,
  async handle(req, res, _params, admin) {
    const text = await readText(req, CONFIG_BODY_LIMIT);
    // Relative paths (certificates, key files) are read from the running config's folder, as a reload would.
    const configDir = configDirOf(admin.runtime()?.configFile);
    try {
      const config = parseConfigText(text, 'candidate', { ...LOAD_OPTIONS, configDir });
      sendJson(res, 200, {
        valid: true,
        problems: [],
        summary: {
          listeners: config.listeners.length,
          upstreams: Object.keys(config.upstreams).length,
          routes: config.routes.length,
        },
      });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      sendJson(res, 200, { valid: false, problems: err.problems });
    }
  },
});
