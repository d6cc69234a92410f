// A modal on the native <dialog>: Escape and the close button close it, focus stays inside
// while it is open. Open state lives only in the parent's memory, never in the URL or storage,
// so a reload always starts with every dialog closed.
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

export interface DialogProps {
  title: ComponentChildren;
  subtitle?: ComponentChildren;
  onClose: () => void;
  children: ComponentChildren;
  footer?: ComponentChildren;
  size?: "small" | "medium" | "large";
  testId?: string;
}

export function Dialog({ title, subtitle, onClose, children, footer, size = "medium", testId }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const closeRef = useRef(onClose);
  closeRef.current = onClose;

  useEffect(() => {
    const dialog = ref.current!;
    dialog.showModal();
    const closed = () => closeRef.current();
    dialog.addEventListener("close", closed);
    return () => {
      dialog.removeEventListener("close", closed);
      if (dialog.open) dialog.close();
    };
  }, []);

  return (
    <dialog
      ref={ref}
      class={`dialog dialog-${size}`}
      data-testid={testId}
      aria-labelledby="dialog-title"
      // A click on the backdrop (the dialog element itself, outside its box) closes it.
      onMouseDown={(e) => {
        if (e.target === ref.current) ref.current?.close();
      }}
    >
      <div class="dialog-box">
        <header class="dialog-header">
          <div>
            <h2 id="dialog-title">{title}</h2>
            {subtitle && <div class="dialog-subtitle">{subtitle}</div>}
          </div>
          <button type="button" class="icon-button" aria-label="Close" title="Close (Esc)" onClick={() => ref.current?.close()}>
            ✕
          </button>
        </header>
        <div class="dialog-body">{children}</div>
        {footer && <footer class="dialog-footer">{footer}</footer>}
      </div>
    </dialog>
  );
}
