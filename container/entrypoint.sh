#!/bin/sh
# Entry point of the bids-deepwmh image.  Apptainer and `docker run --user UID` may give a user
# whose home is missing or read-only; matplotlib, fontconfig, Deno (the BIDS validator) and
# HD-BET keep caches under $HOME, so it is pointed at a private temporary folder instead.
if [ -z "${HOME:-}" ] || [ ! -d "$HOME" ] || [ ! -w "$HOME" ]; then
    HOME="$(mktemp -d "${TMPDIR:-/tmp}/deepwmh-home.XXXXXX")" || {
        echo "deepwmh: no writable home and no writable ${TMPDIR:-/tmp} (mount a tmpfs on /tmp)" >&2
        exit 1
    }
    export HOME
fi
exec deepwmh "$@"
