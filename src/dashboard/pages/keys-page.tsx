// API keys (admins only): list, create (the secret is shown once), revoke.
import { useEffect, useState } from "preact/hooks";
import { createKey, listKeys, revokeKey } from "../api/endpoints";
import type { ApiKey } from "../api/types";
import { Dialog } from "../components/dialog";
import { ago, dateTime, epoch } from "../lib/format";

function keyState(k: ApiKey): "active" | "revoked" | "expired" {
  if (k.state) return k.state;
  if (k.revokedAt) return "revoked";
  const exp = epoch(k.expiresAt);
  return exp !== null && exp <= Date.now() ? "expired" : "active";
}

function CreateKeyDialog({ models, onClose, onCreated }: { models: string[]; onClose: () => void; onCreated: () => void }) {
  const [name, setName] = useState("");
  const [limit, setLimit] = useState<string[]>([]);
  const [expires, setExpires] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);

  if (secret) {
    return (
      <Dialog
        title="API key created"
        onClose={onClose}
        size="small"
        testId="key-created-dialog"
        footer={
          <button type="button" class="button primary" onClick={onClose}>
            Done
          </button>
        }
      >
        <p>Copy the key now: the router stores only its hash and cannot show it again.</p>
        <div class="secret">
          <code data-testid="new-key">{secret}</code>
          <button
            type="button"
            class="button"
            onClick={() => {
              void navigator.clipboard?.writeText(secret).then(() => setCopied(true));
            }}
          >
            {copied ? "Copied" : "Copy"}
          </button>
        </div>
      </Dialog>
    );
  }

  return (
    <Dialog title="New API key" onClose={onClose} size="small" testId="create-key-dialog">
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          setError(null);
          createKey({ name: name.trim(), models: limit.length ? limit : null, expiresAt: expires ? Date.parse(expires) : null })
            .then((created) => {
              setSecret(created.key);
              onCreated();
            })
            .catch((err: Error) => setError(err.message));
        }}
      >
        <label class="field">
          <span>Name</span>
          <input class="input" required value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. open-webui" name="name" />
        </label>
        <fieldset class="field">
          <legend>Models (none ticked: every model)</legend>
          <div class="checks">
            {models.map((m) => (
              <label key={m} class="field-inline checkbox">
                <input
                  type="checkbox"
                  checked={limit.includes(m)}
                  onChange={(e) => setLimit((l) => (e.currentTarget.checked ? [...l, m] : l.filter((x) => x !== m)))}
                />
                {m}
              </label>
            ))}
          </div>
        </fieldset>
        <label class="field">
          <span>Expires (optional)</span>
          <input class="input" type="datetime-local" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} name="expires" />
        </label>
        {error && <div class="alert alert-error">{error}</div>}
        <div class="form-actions">
          <button type="button" class="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="button primary">
            Create key
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function KeysPage({ models }: { models: string[] }) {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [confirmRevoke, setConfirmRevoke] = useState<string | null>(null);
  const [showRevoked, setShowRevoked] = useState(false);

  const load = () =>
    listKeys()
      .then((k) => {
        setKeys(k);
        setError(null);
      })
      .catch((err: Error) => setError(err.message));
  useEffect(() => void load(), []);

  const shown = (keys ?? []).filter((k) => showRevoked || keyState(k) === "active");

  return (
    <section class="panel">
      <header class="panel-header">
        <h2>API keys</h2>
        <div class="toolbar">
          <label class="field-inline checkbox">
            <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.currentTarget.checked)} />
            Show revoked and expired
          </label>
          <button type="button" class="button primary" onClick={() => setCreating(true)}>
            New key
          </button>
        </div>
      </header>
      {error && <div class="alert alert-error">{error}</div>}
      <div class="table-scroll">
        <table class="table" data-testid="keys-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Key</th>
              <th>Models</th>
              <th>State</th>
              <th>Created</th>
              <th>Expires</th>
              <th>Last used</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {shown.map((k) => {
              const state = keyState(k);
              const created = epoch(k.createdAt);
              const expires = epoch(k.expiresAt);
              const used = epoch(k.lastUsedAt);
              return (
                <tr key={k.id}>
                  <td class="cell-title">{k.name}</td>
                  <td class="mono small">{k.prefix}…</td>
                  <td>{k.models === null ? <span class="muted">all</span> : k.models.join(", ")}</td>
                  <td>
                    <span class={`badge key-${state}`}>{state}</span>
                  </td>
                  <td class="small">
                    {created ? dateTime(created) : "—"}
                    {k.createdBy && <div class="cell-sub">by {k.createdBy}</div>}
                  </td>
                  <td class="small">{expires ? dateTime(expires) : <span class="muted">never</span>}</td>
                  <td class="small">{used ? ago(used) : <span class="muted">never</span>}</td>
                  <td class="actions">
                    {state === "active" &&
                      (confirmRevoke === k.id ? (
                        <span class="confirm">
                          <button
                            type="button"
                            class="button danger small"
                            onClick={() =>
                              void revokeKey(k.id)
                                .then(load, (err: Error) => setError(err.message))
                                .finally(() => setConfirmRevoke(null))
                            }
                          >
                            Revoke
                          </button>
                          <button type="button" class="button small" onClick={() => setConfirmRevoke(null)}>
                            Cancel
                          </button>
                        </span>
                      ) : (
                        <button type="button" class="button danger-outline small" onClick={() => setConfirmRevoke(k.id)}>
                          Revoke…
                        </button>
                      ))}
                  </td>
                </tr>
              );
            })}
            {keys !== null && shown.length === 0 && (
              <tr>
                <td colSpan={8} class="empty">
                  No API keys.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {creating && <CreateKeyDialog models={models} onClose={() => setCreating(false)} onCreated={() => void load()} />}
    </section>
  );
}
