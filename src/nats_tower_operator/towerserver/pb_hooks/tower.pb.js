/// <reference path="../pb_data/types.d.ts" />
// NATS Tower's record hooks, for the stand-in (PocketBase + these hooks + signer.py).
//
// They do what Tower's Go hooks do: new installations, accounts, roles and users get real
// nkeys and JWTs (a user's creds are in the answer to its POST); deleting a user revokes its
// key in the account JWT; role changes re-sign the account JWT; every account change is
// pushed to the installation's nats-server. A new installation gets a default limit and a
// SYS account with a "sys" user, as in Tower.

onRecordCreate((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  if (!e.record.getString("sign_seed")) {
    t.setAll(e.record, t.sign("/v1/operator", { name: e.record.getString("description") }));
  }
  e.next();
}, "nats_auth_operators");

onRecordAfterCreateSuccess((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  const limit = new Record(e.app.findCollectionByNameOrId(t.LIMITS));
  t.setAll(limit, {
    operator: e.record.id,
    name: "default",
    type: "account",
    max_connections: -1,
    jetstream_max_disk: -1,
    jetstream_max_memory: -1,
    default: true,
  });
  e.app.save(limit);
  const sys = new Record(e.app.findCollectionByNameOrId(t.ACCOUNTS));
  t.setAll(sys, {
    operator: e.record.id,
    name: "SYS",
    description: "Automatically created system account",
  });
  e.app.save(sys);
  e.next();
}, "nats_auth_operators");

onRecordAfterUpdateSuccess((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  // New client URLs: push every account to the installation's (possibly new) nats-server.
  const accounts = e.app.findRecordsByFilter(
    t.ACCOUNTS, "operator = {:op} && name != 'SYS'", "", 0, 0, { op: e.record.id }
  );
  for (const account of accounts) {
    t.pushAccount(e.app, account);
  }
  e.next();
}, "nats_auth_operators");

onRecordCreate((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  // Without a name PocketBase's own validation answers (validation_required).
  if (!e.record.getString("public_key") && e.record.getString("name")) {
    t.generateAccount(e.app, e.record);
  }
  e.next();
}, "nats_auth_accounts");

onRecordDeleteRequest((e) => {
  if (e.record.getString("name") === "SYS") {
    throw new BadRequestError("cannot delete system account");
  }
  e.next();
}, "nats_auth_accounts");

onRecordAfterCreateSuccess((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  if (e.record.getString("name") === "SYS") {
    const user = new Record(e.app.findCollectionByNameOrId(t.USERS));
    t.setAll(user, {
      account: e.record.id,
      name: "sys",
      description: "Automatically created system user",
    });
    e.app.save(user);
  } else {
    t.pushAccount(e.app, e.record);
  }
  e.next();
}, "nats_auth_accounts");

onRecordAfterUpdateSuccess((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  if (e.record.getString("name") !== "SYS") {
    t.updateAccountJwt(e.app, e.record.id, { name: e.record.getString("name") });
  }
  e.next();
}, "nats_auth_accounts");

onRecordAfterDeleteSuccess((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  // nats-server keeps account JWTs it has seen: push one that admits nobody.
  const operator = t.find(e.app, t.OPERATORS, e.record.getString("operator"));
  if (e.record.getString("name") !== "SYS" && operator) {
    const disabled = t.sign("/v1/account/update", {
      operator_sign_seed: operator.getString("sign_seed"),
      jwt: e.record.getString("jwt"),
      disabled: true,
    });
    t.pushAccount(e.app, e.record, disabled.jwt);
  }
  e.next();
}, "nats_auth_accounts");

onRecordCreate((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  if (!e.record.getString("public_key")) {
    t.setAll(e.record, t.sign("/v1/role", {}));
  }
  e.next();
}, "nats_auth_signing_keys");

onRecordAfterCreateSuccess((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  t.updateAccountJwt(e.app, e.record.getString("account"), { scope: t.roleScope(e.record) });
  e.next();
}, "nats_auth_signing_keys");

onRecordAfterUpdateSuccess((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  t.updateAccountJwt(e.app, e.record.getString("account"), { scope: t.roleScope(e.record) });
  e.next();
}, "nats_auth_signing_keys");

onRecordDeleteRequest((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  if (t.findFirst(e.app, t.USERS, "signing_key = {:r}", { r: e.record.id })) {
    throw new BadRequestError("the role still has users");
  }
  e.next();
}, "nats_auth_signing_keys");

onRecordAfterDeleteSuccess((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  t.updateAccountJwt(e.app, e.record.getString("account"), {
    remove_key: e.record.getString("public_key"),
  });
  e.next();
}, "nats_auth_signing_keys");

onRecordCreate((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  if (!e.record.getString("public_key") && e.record.getString("name")) {
    t.generateUser(e.app, e.record);
  }
  e.next();
}, "nats_auth_users");

onRecordAfterDeleteSuccess((e) => {
  const t = require(`${__hooks}/tower_lib.js`);
  t.updateAccountJwt(e.app, e.record.getString("account"), {
    revoke: [e.record.getString("public_key")],
  });
  e.next();
}, "nats_auth_users");
