#!/usr/bin/env bash
# Deploys /src to the Netlify site named $NETLIFY_SITE_NAME and writes the
# site, deployment and logs URLs to /netlify/{url,deployUrl,logsUrl}.
set -euo pipefail

NETLIFY_AUTH_TOKEN="$(cat /run/secrets/token)"
export NETLIFY_AUTH_TOKEN

find_site() {
	netlify api listSites --data '{ "filter": "all" }' |
		jq -r --arg name "$NETLIFY_SITE_NAME" '.[] | select(.name == $name) | .id' |
		head -n 1
}

site_id="$(find_site)"
if [ -z "$site_id" ]; then
	if [ "${NETLIFY_SITE_CREATE:-}" != "1" ]; then
		echo "site $NETLIFY_SITE_NAME does not exist and creation is disabled" >&2
		exit 1
	fi
	request="$(jq -n \
		--arg name "$NETLIFY_SITE_NAME" \
		--arg domain "${NETLIFY_DOMAIN:-}" \
		'{ body: ({ name: $name } + (if $domain == "" then {} else { custom_domain: $domain } end)) }')"
	netlify api createSite --data "$request" ${NETLIFY_ACCOUNT:+--account-slug "$NETLIFY_ACCOUNT"} >/dev/null
	site_id="$(find_site)"
fi
if [ -z "$site_id" ]; then
	echo "could not find or create site $NETLIFY_SITE_NAME" >&2
	exit 1
fi

netlify link --id "$site_id"
netlify deploy --build --site="$site_id" --prod | tee /tmp/deploy.log

mkdir -p /netlify
grep -E '^Website URL' /tmp/deploy.log | grep -Eo 'https://[^ ]+' | head -n 1 | tr -d '\n' >/netlify/url
grep -E '^Unique Deploy URL' /tmp/deploy.log | grep -Eo 'https://[^ ]+' | head -n 1 | tr -d '\n' >/netlify/deployUrl
grep -E '^Logs' /tmp/deploy.log | grep -Eo 'https://[^ ]+' | head -n 1 | tr -d '\n' >/netlify/logsUrl
