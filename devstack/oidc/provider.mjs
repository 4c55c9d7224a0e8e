// The local stack's OpenID Connect provider (node-oidc-provider), for the feature server's
// permission tests and benchmarks. Started by devstack/oidc.py: `node provider.mjs config.json`.
//
// Clients are registered over HTTP (POST /reg, RFC 7591) with the stack's initial access token,
// each with the roles its tokens carry. Tokens come from the client-credentials grant, as JWTs
// signed RS256 with the stack's key, the roles in Keycloak's resource_access.<client id>.roles:
// the claim Feast's OIDC check reads. Nothing here is for production use.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { issuer, host, port, audience, rolesClientId, initialAccessToken, jwks } = config;

const provider = new Provider(issuer, {
  jwks,
  clients: [],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    registration: { enabled: true, initialAccessToken },
    // Access tokens as JWTs for one resource server: the feature server.
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: 'features',
        audience,
        accessTokenFormat: 'jwt',
        accessTokenTTL: client.access_token_ttl ?? 600,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  // A client's own metadata: the roles its tokens carry, and how long they live (the tests
  // make short-lived ones to see an expired token refused).
  extraClientMetadata: {
    properties: ['roles', 'access_token_ttl'],
    validator(ctx, key, value) {
      if (key === 'roles' && value !== undefined) {
        if (!Array.isArray(value) || !value.every((r) => typeof r === 'string')) {
          throw new Error('roles must be a list of strings');
        }
      }
      if (key === 'access_token_ttl' && value !== undefined && !(Number.isInteger(value) && value > 0)) {
        throw new Error('access_token_ttl must be a positive integer');
      }
    },
  },
  ttl: { ClientCredentials: (ctx, token, client) => client.access_token_ttl ?? 600 },
  extraTokenClaims: async (ctx, token) => {
    const client = await provider.Client.find(token.clientId);
    return {
      preferred_username: token.clientId,
      resource_access: { [rolesClientId]: { roles: client?.roles ?? [] } },
    };
  },
});
provider.proxy = false;

provider.listen(port, host, () => {
  console.log(`oidc-provider ${issuer} listening on ${host}:${port}`);
});
