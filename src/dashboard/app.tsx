// The app shell: session check, login, navigation (admin pages only for admins), the live
// stream, and the current page.
import { useEffect, useState } from "preact/hooks";
import { setUnauthorizedHandler } from "./api/client";
import { logout, whoAmI } from "./api/endpoints";
import type { Me } from "./api/types";
import { RoleBadge } from "./components/badges";
import { fleetStream, useFleet } from "./live/fleet-stream";
import { hrefOf, navigate, usePage, type Page } from "./lib/navigation";
import { FleetPage } from "./pages/fleet-page";
import { KeysPage } from "./pages/keys-page";
import { LoginPage } from "./pages/login-page";
import { RequestsPage } from "./pages/requests-page";
import { UsersPage } from "./pages/users-page";

const NAV: { page: Page; label: string; admin: boolean }[] = [
  { page: "fleet", label: "Fleet", admin: false },
  { page: "requests", label: "Requests", admin: false },
  { page: "keys", label: "API keys", admin: true },
  { page: "users", label: "Users", admin: true },
];

function Shell({ me, onLogout }: { me: Me; onLogout: () => void }) {
  const page = usePage();
  const { snapshot, state } = useFleet();
  const isAdmin = me.role === "admin";
  const nav = NAV.filter((n) => isAdmin || !n.admin);
  // A viewer who lands on an admin page's address sees the fleet instead.
  const shown: Page = nav.some((n) => n.page === page) ? page : "fleet";

  return (
    <div class="shell">
      <header class="topbar">
        <div class="brand">
          <span class="brand-mark">d</span> drover
        </div>
        <nav class="nav" aria-label="Pages">
          {nav.map((n) => (
            <a
              key={n.page}
              href={hrefOf(n.page)}
              class={`nav-link ${shown === n.page ? "active" : ""}`}
              aria-current={shown === n.page ? "page" : undefined}
              onClick={(e) => {
                e.preventDefault();
                navigate(n.page);
              }}
            >
              {n.label}
            </a>
          ))}
        </nav>
        <div class="topbar-right">
          <span class={`live live-${state}`} title={state === "live" ? "Live updates" : "Reconnecting to the router"} data-testid="live-state">
            <span class="live-dot" />
            {state === "live" ? "Live" : state === "connecting" ? "Connecting" : "Reconnecting"}
          </span>
          <span class="user" data-testid="current-user">
            {me.username} <RoleBadge role={me.role} />
          </span>
          <button type="button" class="button small" onClick={onLogout}>
            Sign out
          </button>
        </div>
      </header>
      <main class="content">
        {shown === "fleet" && <FleetPage snapshot={snapshot} isAdmin={isAdmin} />}
        {shown === "requests" && <RequestsPage snapshot={snapshot} />}
        {shown === "keys" && isAdmin && <KeysPage models={snapshot?.models.map((m) => m.id) ?? []} />}
        {shown === "users" && isAdmin && <UsersPage me={me.username} />}
      </main>
    </div>
  );
}

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);

  const refresh = () =>
    whoAmI()
      .then((m) => {
        setMe(m);
        setError(null);
      })
      .catch((err: Error) => setError(`The router did not answer: ${err.message}`));

  useEffect(() => {
    setUnauthorizedHandler(() => setMe(null));
    // A refused stream is either a lost session (back to login) or a router restart (retry).
    fleetStream.onClosed = () => void refresh();
    void refresh();
  }, []);

  useEffect(() => {
    if (me) fleetStream.start();
    else fleetStream.stop();
  }, [me]);

  if (error && me === undefined) return <div class="loading">{error}</div>;
  if (me === undefined) return <div class="loading">Loading…</div>;
  if (me === null) return <LoginPage onLoggedIn={() => void refresh()} />;
  return (
    <Shell
      me={me}
      onLogout={() => {
        void logout()
          .catch(() => undefined)
          .then(() => setMe(null));
      }}
    />
  );
}
