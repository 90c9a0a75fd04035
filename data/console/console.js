// writ console: the only script the pages load (CSP `script-src 'self'`). It signs approvers'
// login challenges and decisions with their Ed25519 key in WebCrypto. The key is imported from the
// JWK the approver picks, not extractable, and kept in this browser's IndexedDB; it is never sent.

const DB = "writ-console";
const STORE = "keys";

function idb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function keep(value) {
  const db = await idb();
  await new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, "readwrite");
    if (value === undefined) tx.objectStore(STORE).delete("approver");
    else tx.objectStore(STORE).put(value, "approver");
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

async function kept() {
  const db = await idb();
  const value = await new Promise((resolve, reject) => {
    const req = db.transaction(STORE).objectStore(STORE).get("approver");
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  db.close();
  return value;
}

const b64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
const text = (s) => new TextEncoder().encode(s);

function randomId() {
  return b64url(crypto.getRandomValues(new Uint8Array(24)));
}

/** A compact JWS (EdDSA) over `claims`, signed with the approver's key. */
async function sign(entry, claims) {
  const header = { alg: "EdDSA", typ: "JWT", ...(entry.kid ? { kid: entry.kid } : {}) };
  const input = `${b64url(text(JSON.stringify(header)))}.${b64url(text(JSON.stringify(claims)))}`;
  const sig = await crypto.subtle.sign({ name: "Ed25519" }, entry.key, text(input));
  return `${input}.${b64url(sig)}`;
}

function claimsFor(who, aud, extra) {
  const now = Math.floor(Date.now() / 1000);
  return { iss: who, sub: who, aud, iat: now, exp: now + 120, jti: randomId(), ...extra };
}

function say(form, message) {
  const status = form.querySelector(".status");
  if (status) status.textContent = message;
}

async function importJwk(raw) {
  let jwk;
  try {
    jwk = JSON.parse(raw);
  } catch {
    throw new Error("the key is not JSON: pick the .jwk file or paste its content");
  }
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.d !== "string") {
    throw new Error("the key must be a private Ed25519 JWK (kty OKP, crv Ed25519, with d)");
  }
  const key = await crypto.subtle.importKey(
    "jwk",
    { kty: "OKP", crv: "Ed25519", x: jwk.x, d: jwk.d },
    { name: "Ed25519" },
    false,
    ["sign"],
  );
  return { key, kid: typeof jwk.kid === "string" ? jwk.kid : undefined };
}

function setupLogin(form) {
  const file = form.querySelector("[data-jwk-file]");
  const area = form.querySelector("[data-jwk]");
  file?.addEventListener("change", async () => {
    const f = file.files?.[0];
    if (f) area.value = await f.text();
  });
  form.addEventListener("submit", async (event) => {
    if (form.dataset.signed === "1") return;
    event.preventDefault();
    try {
      const who = form.elements.approver.value.trim();
      const { key, kid } = await importJwk(area.value);
      const aud = document.body.dataset.audience;
      const assertion = await sign({ key, kid }, claimsFor(who, aud, { jti: form.elements.challenge.value }));
      await keep({ who, key, kid });
      area.value = "";
      form.elements.assertion.value = assertion;
      form.dataset.signed = "1";
      form.submit();
    } catch (err) {
      say(form, `Could not sign in: ${err.message}`);
    }
  });
}

function setupDecision(form) {
  form.addEventListener("submit", async (event) => {
    if (form.dataset.signed === "1") return;
    event.preventDefault();
    try {
      const entry = await kept();
      if (!entry) throw new Error("no key in this browser: sign out and sign in again with your key");
      const aud = `${location.origin}/console/approvals`;
      const reason = form.elements.reason.value.trim();
      const claims = claimsFor(entry.who, form.dataset.audience || aud, {
        approval: form.dataset.approval,
        binding: form.dataset.binding,
        decision: form.dataset.decision,
        ...(reason ? { reason } : {}),
      });
      form.elements.assertion.value = await sign(entry, claims);
      form.dataset.signed = "1";
      form.submit();
    } catch (err) {
      say(form, `Not signed: ${err.message}`);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const login = document.getElementById("approver-login");
  if (login) setupLogin(login);
  for (const form of document.querySelectorAll("form[data-sign=decision]")) setupDecision(form);
  for (const form of document.querySelectorAll("form.logout")) {
    form.addEventListener("submit", async (event) => {
      if (form.dataset.cleared === "1") return;
      event.preventDefault();
      // the approver's key leaves this browser with the session
      await keep(undefined).catch(() => {});
      form.dataset.cleared = "1";
      form.submit();
    });
  }
});
