// Helpers of the stand-in's hooks (tower.pb.js), loaded with require() inside each handler:
// PocketBase runs every handler in an isolated context, so shared code lives in this module.
//
// All signing goes through the stand-in's signing service on loopback (signer.py); the
// hooks keep Tower's data model: seeds, JWTs and creds are stored on the records.

const OPERATORS = "nats_auth_operators";
const ACCOUNTS = "nats_auth_accounts";
const USERS = "nats_auth_users";
const LIMITS = "nats_auth_limits";
const ROLES = "nats_auth_signing_keys";
const OPTIONS = "standin_account_options";

// POST body to the signing service; returns its JSON answer or throws a 400.
function sign(path, body) {
  const res = $http.send({
    url: $os.getenv("TOWER_STANDIN_SIGNER_URL") + path,
    method: "POST",
    body: JSON.stringify(body || {}),
    headers: {
      "content-type": "application/json",
      "x-signer-key": $os.getenv("TOWER_STANDIN_SIGNER_KEY"),
    },
    timeout: 10,
  });
  if (res.statusCode < 200 || res.statusCode > 299) {
    const message = (res.json && res.json.message) || "HTTP " + res.statusCode;
    throw new BadRequestError("signing service: " + message);
  }
  return res.json;
}

function setAll(record, values) {
  for (const name of Object.keys(values)) {
    record.set(name, values[name]);
  }
}

function find(app, collection, id) {
  try {
    return app.findRecordById(collection, id);
  } catch (_) {
    return null;
  }
}

function findFirst(app, collection, filter, params) {
  try {
    return app.findFirstRecordByFilter(collection, filter, params);
  } catch (_) {
    return null;
  }
}

// A JSON field that should hold a list of strings (Tower does not validate it).
function stringList(record, name) {
  let value;
  try {
    value = JSON.parse(record.getString(name) || "null");
  } catch (_) {
    return [];
  }
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter((s) => typeof s === "string" && s !== "");
}

// Queue the account's current JWT for its installation's nats-server (as the SYS user).
function pushAccount(app, account, jwt) {
  const operator = find(app, OPERATORS, account.getString("operator"));
  if (!operator || !operator.getString("url")) {
    return;
  }
  const sys = findFirst(app, ACCOUNTS, "operator = {:op} && name = 'SYS'", { op: operator.id });
  const sysUser = sys && findFirst(app, USERS, "account = {:a} && name = 'sys'", { a: sys.id });
  if (!sysUser) {
    return;
  }
  sign("/v1/push", {
    urls: operator.getString("url"),
    creds: sysUser.getString("creds"),
    account_public_key: account.getString("public_key"),
    jwt: jwt || account.getString("jwt"),
  });
}

// Re-sign an account's JWT with `change` (revoke, scope, remove_key, name) and push it.
// Serialised: PocketBase runs transactions on its single writer connection, so concurrent
// revocations of one account never overwrite each other.
function updateAccountJwt(app, accountId, change) {
  let updated = null;
  app.runInTransaction((tx) => {
    const account = find(tx, ACCOUNTS, accountId);
    if (!account) {
      return;
    }
    const operator = find(tx, OPERATORS, account.getString("operator"));
    if (!operator) {
      return;
    }
    const body = Object.assign(
      { operator_sign_seed: operator.getString("sign_seed"), jwt: account.getString("jwt") },
      change
    );
    account.set("jwt", sign("/v1/account/update", body).jwt);
    tx.unsafeWithoutHooks().save(account);
    updated = account;
  });
  if (updated && updated.getString("name") !== "SYS") {
    pushAccount(app, updated);
  }
}

function roleScope(role) {
  return {
    key: role.getString("public_key"),
    role: role.getString("role"),
    publish: stringList(role, "publish"),
    subscribe: stringList(role, "subscribe"),
  };
}

// Keys and JWT of a new account, signed by its installation's operator signing key.
function generateAccount(app, record) {
  const operator = find(app, OPERATORS, record.getString("operator"));
  if (!operator) {
    throw new BadRequestError("the installation does not exist");
  }
  if (!operator.getString("sign_seed")) {
    throw new BadRequestError("the installation has no signing seed");
  }
  setAll(
    record,
    sign("/v1/account", {
      operator_sign_seed: operator.getString("sign_seed"),
      name: record.getString("name"),
      system: record.getString("name") === "SYS",
    })
  );
  if (!record.getString("limits")) {
    const limit = findFirst(app, LIMITS, "operator = {:op} && default = true", { op: operator.id });
    if (limit) {
      record.set("limits", limit.id);
    }
  }
}

// Keys, JWT and creds of a new user: signed by the account's signing key, or by the role's
// scoped key when `signing_key` is set (the role must belong to the same account).
function generateUser(app, record) {
  const account = find(app, ACCOUNTS, record.getString("account"));
  if (!account) {
    throw new BadRequestError("the account does not exist");
  }
  let seed = account.getString("sign_seed");
  let scoped = false;
  const roleId = record.getString("signing_key");
  if (roleId) {
    const role = find(app, ROLES, roleId);
    if (!role || role.getString("account") !== account.id) {
      throw new BadRequestError("signing key does not belong to this account");
    }
    seed = role.getString("seed");
    scoped = true;
  }
  let ttl = 0;
  const options = findFirst(app, OPTIONS, "account = {:a}", { a: account.id });
  if (options) {
    ttl = options.getInt("user_jwt_ttl");
  }
  setAll(
    record,
    sign("/v1/user", {
      account_public_key: account.getString("public_key"),
      signing_seed: seed,
      name: record.getString("name"),
      scoped: scoped,
      ttl: ttl,
    })
  );
}

module.exports = {
  ACCOUNTS,
  LIMITS,
  OPERATORS,
  ROLES,
  USERS,
  find,
  findFirst,
  generateAccount,
  generateUser,
  pushAccount,
  roleScope,
  setAll,
  sign,
  updateAccountJwt,
};
