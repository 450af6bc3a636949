// The OpenID provider the browser tests sign in with, also playing an EHR's SMART authorization
// server: oidc-provider (a certified OpenID provider) on 127.0.0.1, a free port.
//
//   node server.js <accounts.json> <client id> <smart client id>
//
// Prints one JSON line {"issuer": ..., "fhir_base": ...} once it listens. The sign-in form is
// oidc-provider's own (devInteractions): the login typed in names an account of accounts.json,
// whose roles/team/staff_id become claims (scope "fhirbridge") and whose fhirUser is the SMART
// fhirUser claim. A SMART EHR launch's opaque `launch` value names a launch context there; its
// patient is returned in the token response, as SMART App Launch 2.x asks.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider, { interactionPolicy } from 'oidc-provider';

const [accountsPath, clientId, smartClientId] = process.argv.slice(2);
const { accounts, launches, standalone_patient: standalonePatient } = JSON.parse(
  readFileSync(accountsPath, 'utf8'),
);
// The FHIR base URL the EHR would launch with (`iss`); only its SMART configuration is served.
const FHIR_PATH = '/fhir';
const REDIRECT_PATH = '/app/sign-in/callback';
const SMART_REDIRECT_PATH = '/app/launch/callback';

const server = createServer();
await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;
const fhirBase = `${issuer}${FHIR_PATH}`;

// The launch context chosen when the app was authorized, by grant, until its code is redeemed.
const launchByGrant = new Map();

// A first-party app: no consent screen, also not the one oidc-provider shows native clients.
const policy = interactionPolicy.base();
policy.get('consent').checks.remove('native_client_prompt');

const provider = new Provider(issuer, {
  interactions: { policy },
  clients: [
    {
      client_id: clientId,
      // A public client using PKCE; "native" lets the loopback redirect URI take any port
      // (RFC 8252, 7.3), as each test app listens on a free one.
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: [`http://127.0.0.1${REDIRECT_PATH}`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
    {
      client_id: smartClientId,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: [`http://127.0.0.1${SMART_REDIRECT_PATH}`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  scopes: ['openid', 'profile', 'fhirbridge', 'fhirUser', 'launch', 'launch/patient'],
  claims: {
    openid: ['sub'],
    profile: ['name'],
    fhirbridge: ['roles', 'team', 'staff_id'],
    fhirUser: ['fhirUser'],
  },
  // Scope claims go into the ID token itself, where the app reads them.
  conformIdTokenClaims: false,
  extraParams: ['launch', 'aud'],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (account === undefined) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: `user-${id}`, ...account };
      },
    };
  },
  // A first-party app: every requested scope and claim is granted without a consent screen.
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    const grant = grantId
      ? await oidc.provider.Grant.find(grantId)
      : new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
    grant.addOIDCScope(oidc.params.scope ?? 'openid');
    await grant.save();
    const scopes = new Set((oidc.params.scope ?? '').split(' '));
    const launch = oidc.params.launch;
    if (scopes.has('launch') && launch && launches[launch]) {
      launchByGrant.set(grant.jti, launches[launch]);
    } else if (scopes.has('launch/patient')) {
      launchByGrant.set(grant.jti, { patient: standalonePatient });
    } else {
      launchByGrant.delete(grant.jti);
    }
    return grant;
  },
});

provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === `${FHIR_PATH}/.well-known/smart-configuration`) {
    ctx.body = {
      issuer,
      jwks_uri: `${issuer}/jwks`,
      authorization_endpoint: `${issuer}/auth`,
      token_endpoint: `${issuer}/token`,
      grant_types_supported: ['authorization_code'],
      token_endpoint_auth_methods_supported: ['none'],
      scopes_supported: ['openid', 'fhirUser', 'launch', 'launch/patient', 'patient/*.read'],
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      capabilities: [
        'launch-ehr', 'launch-standalone', 'client-public', 'context-ehr-patient',
        'context-standalone-patient', 'sso-openid-connect', 'permission-patient',
      ],
    };
    return;
  }
  await next();
  // SMART: the launch context travels in the token response, beside the access token.
  if (ctx.oidc?.route === 'token' && ctx.status === 200 && ctx.body?.access_token) {
    const grantId = ctx.oidc.entities.AuthorizationCode?.grantId;
    const context = grantId && launchByGrant.get(grantId);
    if (context) {
      ctx.body = { ...ctx.body, patient: context.patient };
      launchByGrant.delete(grantId);
    }
  }
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer, fhir_base: fhirBase })}\n`);
process.on('SIGTERM', () => { server.close(() => process.exit(0)); });
