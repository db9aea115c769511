import { type ReactNode, useState } from 'react';
import { type ProblemView, problemOf } from './api-client.js';
import { ProblemMessage } from './problem-message.js';

interface DeleteSectionProps {
  /** Unique on the page: labels the section. */
  id: string;
  /** "connector", "webhook": the first button reads "Delete connector…". */
  noun: string;
  /** What deleting does, shown before the person confirms. */
  consequences: ReactNode;
  confirmLabel?: string;
  /** Deletes; a thrown error is shown in the section and nothing else changes. */
  onDelete: () => Promise<void>;
  onCancel?: () => void;
}

/**
 * The panel's last section: a button that asks before deleting, saying what the deletion does,
 * and shows why a deletion failed where it was asked for.
 */
export function DeleteSection({
  id,
  noun,
  consequences,
  confirmLabel,
  onDelete,
  onCancel,
}: DeleteSectionProps) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<ProblemView | null>(null);
  const remove = async () => {
    setProblem(null);
    setBusy(true);
    try {
      await onDelete();
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  };
  const cancel = () => {
    setConfirming(false);
    setProblem(null);
    onCancel?.();
  };
  return (
    <section className="panel-section danger-zone" aria-labelledby={`delete-${id}`}>
      <h3 id={`delete-${id}`}>Delete</h3>
      {!confirming ? (
        <button type="button" className="button danger-outline" onClick={() => setConfirming(true)}>
          Delete {noun}…
        </button>
      ) : (
        <div className="delete-confirm">
          {consequences}
          <div className="button-row">
            <button type="button" className="button danger" disabled={busy} onClick={() => void remove()}>
              {confirmLabel ?? 'Delete'}
            </button>
            <button type="button" className="button ghost" onClick={cancel}>
              Cancel
            </button>
          </div>
        </div>
      )}
      <div aria-live="polite">{problem && <ProblemMessage problem={problem} />}</div>
    </section>
  );
}
