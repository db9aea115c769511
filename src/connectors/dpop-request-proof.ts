import type { DpopBinding } from '../oauth/client-config.js';
import { asksForNonce, dpopProof } from '../oauth/dpop.js';
import type { RequestProof } from './credential-source.js';
import { firstValue } from './http-headers.js';

/**
 * DPoP proofs for the calls of a DPoP-bound token (RFC 9449 §7): a fresh proof per request, bound
 * to its method and URL (`htm`, `htu`), to the token (`ath`), and to the nonce the API gave last
 * (kept per DPoP key and origin, with the token endpoint's, in one DpopNonces).
 */
export class DpopRequestProof implements RequestProof {
  readonly #binding: DpopBinding;
  readonly #accessToken: string;

  constructor(binding: DpopBinding, accessToken: string) {
    this.#binding = binding;
    this.#accessToken = accessToken;
  }

  fieldsFor(method: string, url: string): readonly string[] {
    const { key, jkt, nonces } = this.#binding;
    const { proof } = dpopProof(key, {
      method,
      url,
      accessToken: this.#accessToken,
      nonce: nonces.get(jkt, url),
    });
    return ['dpop', proof];
  }

  answered(
    url: string,
    status: number,
    headers: Readonly<Record<string, string | string[] | undefined>>,
  ): boolean {
    const learned = this.#binding.nonces.learn(this.#binding.jkt, url, headers);
    return (
      learned !== null &&
      asksForNonce({ status, wwwAuthenticate: firstValue(headers['www-authenticate']) ?? null })
    );
  }
}
