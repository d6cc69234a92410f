// Users (admins only): list, create, change role, set a new password, delete.
import { useEffect, useState } from "preact/hooks";
import { createUser, deleteUser, listUsers, updateUser } from "../api/endpoints";
import type { Role, User } from "../api/types";
import { RoleBadge } from "../components/badges";
import { Dialog } from "../components/dialog";
import { dateTime, epoch } from "../lib/format";

function UserDialog({ user, onClose, onSaved }: { user: User | null; onClose: () => void; onSaved: () => void }) {
  const [username, setUsername] = useState(user?.username ?? "");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>(user?.role ?? "viewer");
  const [error, setError] = useState<string | null>(null);

  const save = async () => {
    if (!user) return void (await createUser(username.trim(), password, role));
    const change: { role?: Role; password?: string } = {};
    if (role !== user.role) change.role = role;
    if (password) change.password = password;
    if (Object.keys(change).length) await updateUser(user.username, change);
  };

  return (
    <Dialog title={user ? `Edit ${user.username}` : "New user"} onClose={onClose} size="small" testId="user-dialog">
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          setError(null);
          save()
            .then(() => {
              onSaved();
              onClose();
            })
            .catch((err: Error) => setError(err.message));
        }}
      >
        <label class="field">
          <span>Username</span>
          <input
            class="input"
            required
            disabled={user !== null}
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
            name="username"
            autoComplete="off"
          />
        </label>
        <label class="field">
          <span>{user ? "New password (leave empty to keep)" : "Password"}</span>
          <input
            class="input"
            type="password"
            required={user === null}
            minLength={8}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
            name="password"
            autoComplete="new-password"
          />
        </label>
        <label class="field">
          <span>Role</span>
          <select class="input" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)} name="role">
            <option value="viewer">viewer: sees everything, changes nothing</option>
            <option value="admin">admin: also manages nodes, keys and users</option>
          </select>
        </label>
        {error && <div class="alert alert-error">{error}</div>}
        <div class="form-actions">
          <button type="button" class="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="button primary">
            {user ? "Save" : "Create user"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function UsersPage({ me }: { me: string }) {
  const [users, setUsers] = useState<User[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<User | "new" | null>(null);
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);

  const load = () =>
    listUsers()
      .then((u) => {
        setUsers(u);
        setError(null);
      })
      .catch((err: Error) => setError(err.message));
  useEffect(() => void load(), []);

  return (
    <section class="panel">
      <header class="panel-header">
        <h2>Users</h2>
        <div class="toolbar">
          <button type="button" class="button primary" onClick={() => setEditing("new")}>
            New user
          </button>
        </div>
      </header>
      {error && <div class="alert alert-error">{error}</div>}
      <div class="table-scroll">
        <table class="table" data-testid="users-table">
          <thead>
            <tr>
              <th>Username</th>
              <th>Role</th>
              <th>Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(users ?? []).map((u) => {
              const created = epoch(u.createdAt);
              return (
                <tr key={u.id} data-user={u.username}>
                  <td class="cell-title">
                    {u.username}
                    {u.username === me && <span class="muted small"> (you)</span>}
                  </td>
                  <td>
                    <RoleBadge role={u.role} />
                  </td>
                  <td class="small">{created ? dateTime(created) : "—"}</td>
                  <td class="actions">
                    <button type="button" class="button small" onClick={() => setEditing(u)}>
                      Edit
                    </button>
                    {u.username !== me &&
                      (confirmDelete === u.username ? (
                        <span class="confirm">
                          <button
                            type="button"
                            class="button danger small"
                            onClick={() =>
                              void deleteUser(u.username)
                                .then(load, (err: Error) => setError(err.message))
                                .finally(() => setConfirmDelete(null))
                            }
                          >
                            Delete
                          </button>
                          <button type="button" class="button small" onClick={() => setConfirmDelete(null)}>
                            Cancel
                          </button>
                        </span>
                      ) : (
                        <button type="button" class="button danger-outline small" onClick={() => setConfirmDelete(u.username)}>
                          Delete…
                        </button>
                      ))}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {editing && <UserDialog user={editing === "new" ? null : editing} onClose={() => setEditing(null)} onSaved={() => void load()} />}
    </section>
  );
}
