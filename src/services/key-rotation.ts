import type { KeyRing } from '../secrets/key-ring.js';
import type { Store } from '../store/contract.js';

/** The setting that proves which master key the data was written with (see app.ts verifyMasterKey). */
export const KEY_CHECK_SETTING = 'master_key_check';
export const KEY_CHECK_CONTEXT = { table: 'settings', id: KEY_CHECK_SETTING, column: 'value' };

/**
 * Re-encrypts every stored secret still sealed under an older master key with the current one:
 * authentication and connector secrets, tokens, flow verifiers and the key check value. Each value
 * is replaced only while it is unchanged (the store's rule), so a token refreshed meanwhile — and
 * already sealed under the new key — is never overwritten. Returns how many values were re-sealed.
 */
export async function rotateSecrets(store: Store, ring: KeyRing): Promise<number> {
  let resealed = 0;
  for (const ref of await store.listSealed()) {
    if (!ring.needsReseal(ref.value)) continue;
    const context = { table: ref.table, id: ref.id, column: ref.column };
    await store.replaceSealed(ref, ring.seal(ring.open(ref.value, context), context));
    resealed++;
  }
  const check = await store.getSetting(KEY_CHECK_SETTING);
  if (check !== null && ring.needsReseal(check)) {
    await store.setSetting(
      KEY_CHECK_SETTING,
      ring.seal(ring.open(check, KEY_CHECK_CONTEXT), KEY_CHECK_CONTEXT),
    );
  }
  return resealed;
}
