#!/bin/sh
# quantum-trader CLI for an installed deployment. Template: deploy/install.sh renders
# @APP_DIR@ and @NODE@ and installs the result as /usr/local/bin/quantum.
# It reads the services' settings from /etc/quantum/quantum.env when it can (root or the
# quantum group), so `sudo quantum validate` checks the ports the services really use.
# Variables already set in the caller's environment win over the file; QT_ENV_FILE
# names another file.
ENV_FILE=${QT_ENV_FILE:-/etc/quantum/quantum.env}
if [ -r "$ENV_FILE" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '#'* | '' | [!A-Za-z_]*) continue ;; *=*) ;; *) continue ;; esac
    key=${line%%=*}
    value=${line#*=}
    case "$key" in '' | [0-9]* | *[!A-Za-z0-9_]*) continue ;; esac
    case "$value" in \"*\" | \'*\') value=${value#?}; value=${value%?} ;; esac
    eval "already=\${$key+x}"
    # shellcheck disable=SC2154 # set by the eval above
    [ -n "$already" ] || export "$key=$value"
  done <"$ENV_FILE"
fi
exec @NODE@ @APP_DIR@/bin/quantum.js "$@"
