// The login form (POST /api/auth/login; the router answers with an httpOnly session cookie).
import { useState } from "preact/hooks";
import { login } from "../api/endpoints";

export function LoginPage({ onLoggedIn }: { onLoggedIn: () => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  return (
    <main class="login">
      <form
        class="login-box"
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          login(username.trim(), password)
            .then(onLoggedIn)
            .catch((err: Error & { status?: number }) => setError(err.status === 401 ? "Wrong username or password." : err.message))
            .finally(() => setBusy(false));
        }}
      >
        <div class="brand brand-large">
          <span class="brand-mark">d</span> drover
        </div>
        <p class="muted">Sign in to the fleet dashboard.</p>
        <label class="field">
          <span>Username</span>
          {/* biome-ignore lint/a11y/noAutofocus: the page exists to type this field; nothing else competes for focus */}
          <input
            class="input"
            name="username"
            autoComplete="username"
            required
            autoFocus
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
          />
        </label>
        <label class="field">
          <span>Password</span>
          <input
            class="input"
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <div class="alert alert-error" role="alert">
            {error}
          </div>
        )}
        <button type="submit" class="button primary wide" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
