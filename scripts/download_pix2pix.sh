#!/bin/bash
# Fetch a pix2pix dataset (Isola et al. 2017) into DATA_DIR/NAME/{train,val[,test]}/*.jpg,
# each file A|B side by side: the layout datamodules.PairedImageDataModule reads.
#   bash scripts/download_pix2pix.sh NAME [DATA_DIR]     (DATA_DIR: default $GENMODELS_DATA, else ./data)
# NAME: cityscapes | edges2handbags | edges2shoes | facades | maps | night2day
# Downloads only when run; the archive is verified to unpack into NAME/ before it is kept.
set -euo pipefail
NAME=${1:?usage: bash scripts/download_pix2pix.sh NAME [DATA_DIR]}
DATA_DIR=${2:-${GENMODELS_DATA:-data}}
case "$NAME" in
  cityscapes|edges2handbags|edges2shoes|facades|maps|night2day) ;;
  *) echo "unknown pix2pix dataset '$NAME': choose cityscapes, edges2handbags, edges2shoes, facades, maps or night2day" >&2; exit 2 ;;
esac
URL="http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/$NAME.tar.gz"
mkdir -p "$DATA_DIR"
if [ -d "$DATA_DIR/$NAME/train" ]; then echo "$DATA_DIR/$NAME/train exists; nothing to do"; exit 0; fi
TMP=$(mktemp -d "$DATA_DIR/.download-$NAME.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "downloading $URL"
curl -fL --retry 3 -o "$TMP/$NAME.tar.gz" "$URL"
tar -xzf "$TMP/$NAME.tar.gz" -C "$TMP"
[ -d "$TMP/$NAME/train" ] || { echo "the archive did not unpack into $NAME/train" >&2; exit 1; }
mv "$TMP/$NAME" "$DATA_DIR/$NAME"
echo "$DATA_DIR/$NAME: $(ls "$DATA_DIR/$NAME" | tr '\n' ' ')"
