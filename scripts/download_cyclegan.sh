#!/bin/bash
# Fetch a CycleGAN dataset (Zhu et al. 2017) into DATA_DIR/NAME/{trainA,trainB,testA,testB}/*.jpg:
# the layout datamodules.UnpairedImageDataModule reads.
#   bash scripts/download_cyclegan.sh NAME [DATA_DIR]    (DATA_DIR: default $GENMODELS_DATA, else ./data)
# NAME: apple2orange | summer2winter_yosemite | horse2zebra | monet2photo | cezanne2photo |
#       ukiyoe2photo | vangogh2photo | maps | cityscapes | facades | iphone2dslr_flower | ae_photos
# Downloads only when run; the archive is verified to unpack into NAME/trainA before it is kept.
set -euo pipefail
NAME=${1:?usage: bash scripts/download_cyclegan.sh NAME [DATA_DIR]}
DATA_DIR=${2:-${GENMODELS_DATA:-data}}
case "$NAME" in
  apple2orange|summer2winter_yosemite|horse2zebra|monet2photo|cezanne2photo|ukiyoe2photo|vangogh2photo|maps|cityscapes|facades|iphone2dslr_flower|ae_photos) ;;
  *) echo "unknown CycleGAN dataset '$NAME' (see the list at the top of this script)" >&2; exit 2 ;;
esac
URL="https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/$NAME.zip"
mkdir -p "$DATA_DIR"
if [ -d "$DATA_DIR/$NAME/trainA" ]; then echo "$DATA_DIR/$NAME/trainA exists; nothing to do"; exit 0; fi
TMP=$(mktemp -d "$DATA_DIR/.download-$NAME.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "downloading $URL"
curl -fL --retry 3 -o "$TMP/$NAME.zip" "$URL"
unzip -q "$TMP/$NAME.zip" -d "$TMP"
[ -d "$TMP/$NAME/trainA" ] || { echo "the archive did not unpack into $NAME/trainA" >&2; exit 1; }
mv "$TMP/$NAME" "$DATA_DIR/$NAME"
echo "$DATA_DIR/$NAME: $(ls "$DATA_DIR/$NAME" | tr '\n' ' ')"
