// The browser side of the passkey ceremonies (WebAuthn Level 3 §5.1.3 create(), §5.1.4 get()), served by the edge
// as /passkeys.js under `script-src 'self'`. A box `[data-passkey]` names its ceremony ("create" or "get"), the
// URL of its options (a POST with the page's CSRF token in X-CSRF-Token), its mode, and holds the form the
// response is posted with (fields handle and credential). With `data-auto`, the options are fetched when the page
// loads and the box is shown only if there are any (the second factor: only accounts with a passkey get options).
(function () {
  "use strict";

  function b64(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i += 1) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function unb64(text) {
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function descriptors(list) {
    return (list || []).map((d) => Object.assign({}, d, { id: unb64(d.id) }));
  }

  function creationOptions(o) {
    return Object.assign({}, o, {
      challenge: unb64(o.challenge),
      user: Object.assign({}, o.user, { id: unb64(o.user.id) }),
      excludeCredentials: descriptors(o.excludeCredentials),
    });
  }

  function requestOptions(o) {
    return Object.assign({}, o, { challenge: unb64(o.challenge), allowCredentials: descriptors(o.allowCredentials) });
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      try { return JSON.stringify(credential.toJSON()); } catch (e) { /* the manual form below */ }
    }
    const r = credential.response;
    const response = { clientDataJSON: b64(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = b64(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = b64(r.authenticatorData);
      response.signature = b64(r.signature);
      if (r.userHandle) response.userHandle = b64(r.userHandle);
    }
    return JSON.stringify({
      id: credential.id, rawId: b64(credential.rawId), type: credential.type, response: response,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    });
  }

  async function fetchOptions(box) {
    const reply = await fetch(box.dataset.options, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf },
      body: JSON.stringify({ mode: box.dataset.mode || "" }),
    });
    const body = await reply.json().catch(() => ({}));
    if (!reply.ok) {
      const error = new Error(body.error_description || reply.statusText);
      error.status = reply.status;
      throw error;
    }
    return body;
  }

  function setUp(box) {
    const button = box.querySelector("[data-passkey-start]");
    const form = box.querySelector("form");
    const message = box.querySelector("[data-passkey-error]");
    let pending = null;

    function fail(text) {
      message.textContent = text || box.dataset.failed || "";
      message.hidden = false;
    }

    async function run() {
      button.disabled = true;
      message.hidden = true;
      try {
        const ceremony = pending || (await fetchOptions(box));
        pending = null;
        const credential = box.dataset.ceremony === "create"
          ? await navigator.credentials.create({ publicKey: creationOptions(ceremony.options) })
          : await navigator.credentials.get({ publicKey: requestOptions(ceremony.options) });
        if (!credential) throw new Error(box.dataset.failed);
        form.elements.handle.value = ceremony.handle;
        form.elements.credential.value = credentialJSON(credential);
        form.submit();
      } catch (error) {
        button.disabled = false;
        fail(error && error.name === "NotAllowedError" ? box.dataset.cancelled : error.message);
      }
    }

    button.addEventListener("click", run);
    if (box.dataset.auto) {
      fetchOptions(box).then((ceremony) => { pending = ceremony; box.hidden = false; }, () => {});
    } else {
      box.hidden = false;
    }
  }

  if (!window.PublicKeyCredential || !navigator.credentials) return;  // no WebAuthn here: the boxes stay hidden
  document.querySelectorAll("[data-passkey]").forEach(setUp);
})();
