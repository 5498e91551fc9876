#!/bin/sh
# Installs version $1 of the AWS command line (v2) into the image.
set -eu

version="$1"
work="$(mktemp -d)"
cd "$work"

curl -fsSL "https://awscli.amazonaws.com/awscli-exe-linux-$(uname -m)-${version}.zip" -o awscli.zip
unzip -q awscli.zip -x 'aws/dist/awscli/examples/*' 'aws/dist/docutils/*'
./aws/install

cd /
rm -rf "$work"
