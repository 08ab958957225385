#!/usr/bin/env bash
# Makes the labelled image pairs of compare's corpus (corpus_test.go,
# realCorpus) with real encoders and resamplers: ImageMagick 6 (convert),
# libvips (vipsthumbnail), libwebp (cwebp). Each case is NAME.legacy.EXT and
# NAME.new.EXT; the labels (must pass, must fail, and why) are in
# corpus_test.go. The source photos are scikit-image's sample data
# (python3-skimage; coffee and chelsea: CC0, astronaut: public domain),
# read from SRC; exiftool tags the camera JPEG's orientation.
#
#   apt-get install -y imagemagick libvips-tools webp python3-skimage libimage-exiftool-perl
#   cd compare/testdata/images && ./make-images.sh
#
# Encoders change between versions: rerun only to change the corpus, and
# commit the files it makes (the tests never run these tools).
set -euo pipefail
cd "$(dirname "$0")"
SRC=${SRC:-/usr/lib/python3/dist-packages/skimage/data}
IM=/usr/bin/convert # ImageMagick itself, not a wrapper earlier in PATH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -f ./*.jpg ./*.png ./*.webp

# Sources at thumbnail-input size.
"$IM" "$SRC/coffee.png" "$tmp/coffee.png"     # 600x400
"$IM" "$SRC/chelsea.png" -crop 450x300+0+0 +repage "$tmp/chelsea.png"
"$IM" "$SRC/astronaut.png" "$tmp/astronaut.png" # 512x512

## Harmless: must pass.

# Resamplers: ImageMagick Lanczos (its default for downscaling), bilinear
# (Triangle), libvips' thumbnail (its own Lanczos3 shrink).
"$IM" "$tmp/coffee.png" -filter Lanczos -resize 240x160 -quality 85 resample-lanczos-triangle.legacy.jpg
"$IM" "$tmp/coffee.png" -filter Triangle -resize 240x160 -quality 85 resample-lanczos-triangle.new.jpg
"$IM" "$tmp/coffee.png" -filter Lanczos -resize 240x160 -quality 85 resample-im-vips.legacy.jpg
vipsthumbnail "$tmp/coffee.png" -s 240x160 -o "$PWD/resample-im-vips.new.jpg[Q=85,strip]"
"$IM" "$tmp/chelsea.png" -filter Triangle -resize 240x160 resample-bilinear-vips.legacy.png
vipsthumbnail "$tmp/chelsea.png" -s 240x160 -o "$PWD/resample-bilinear-vips.new.png[strip]"

# libgd, as nginx's image_filter runs it (resize, JPEG quality 85), vs
# libvips' thumbnail of the same JPEG upload.
"$IM" "$tmp/coffee.png" -quality 95 "$tmp/coffee.jpg"
mkdir -p "$tmp/ngx/www"
cp "$tmp/coffee.jpg" "$tmp/ngx/www/"
port=$((20000 + RANDOM % 20000))
cat >"$tmp/ngx/nginx.conf" <<NGX
load_module /usr/lib/nginx/modules/ngx_http_image_filter_module.so;
daemon off; master_process off; error_log stderr; pid $tmp/ngx/nginx.pid;
events {}
http { access_log off; client_body_temp_path $tmp/ngx; proxy_temp_path $tmp/ngx;
  fastcgi_temp_path $tmp/ngx; uwsgi_temp_path $tmp/ngx; scgi_temp_path $tmp/ngx;
  server { listen 127.0.0.1:$port;
    location /thumb/ { alias $tmp/ngx/www/; image_filter resize 240 160;
      image_filter_jpeg_quality 85; image_filter_buffer 16M; } } }
NGX
mkdir -p "$tmp/ngx/logs"
nginx -p "$tmp/ngx" -c "$tmp/ngx/nginx.conf" &
ngx=$!
for _ in $(seq 50); do curl -sf -o resample-gd-vips.legacy.jpg "http://127.0.0.1:$port/thumb/coffee.jpg" && break; sleep 0.1; done
kill "$ngx"
wait "$ngx" || true
vipsthumbnail "$tmp/coffee.jpg" -s 240x160 -o "$PWD/resample-gd-vips.new.jpg[Q=85,strip]"

# Re-encodes of one thumbnail.
"$IM" "$tmp/astronaut.png" -resize 256x256 "$tmp/astro-thumb.png"
"$IM" "$tmp/astro-thumb.png" -quality 95 jpeg-q95-q80.legacy.jpg
"$IM" "$tmp/astro-thumb.png" -quality 80 jpeg-q95-q80.new.jpg
"$IM" "$tmp/coffee.png" -resize 240x160 "$tmp/coffee-thumb.png"
"$IM" "$tmp/coffee-thumb.png" -quality 85 -sampling-factor 1x1 jpeg-444-420.legacy.jpg
"$IM" "$tmp/coffee-thumb.png" -quality 85 -sampling-factor 2x2 jpeg-444-420.new.jpg
"$IM" "$tmp/coffee-thumb.png" -quality 85 jpeg-vs-webp.legacy.jpg
cwebp -quiet -q 80 "$tmp/coffee-thumb.png" -o jpeg-vs-webp.new.webp
# A cut-out with a soft edge (what a background-removal service returns).
"$IM" "$tmp/coffee-thumb.png" \( -size 240x160 xc:black -fill white -draw "circle 120,80 120,12" -blur 0x2 \) \
  -alpha off -compose CopyOpacity -composite "$tmp/cutout.png"
cwebp -quiet -lossless "$tmp/cutout.png" -o webp-lossless-lossy-alpha.legacy.webp
cwebp -quiet -q 80 "$tmp/cutout.png" -o webp-lossless-lossy-alpha.new.webp

# The white thumbnail of the issue, small: libgd gave (252,254,252) where
# libvips gave (255,255,255) (as tandem decoded them). PNG keeps the levels
# exact (a JPEG of (252,254,252) decodes to (252,255,252) in Go).
"$IM" -size 240x240 'xc:rgb(252,254,252)' white-gd-vips.legacy.png
"$IM" -size 240x240 xc:white white-gd-vips.new.png

## Regressions: must fail.

# CMYK gone wrong: the new service converts through CMYK and reads the
# channels inverted (an Adobe CMYK JPEG's inversion ignored).
"$IM" "$tmp/coffee-thumb.png" -quality 85 cmyk-inverted.legacy.jpg
"$IM" "$tmp/coffee-thumb.png" -colorspace CMYK -channel CMYK -negate +channel -colorspace sRGB -quality 85 cmyk-inverted.new.jpg
# The WebP colour shift of the issue: +4.4/+1.7/+3.3 levels R/G/B (1.7255%,
# 0.6667%, 1.2941% of the range) before encoding; legacy serves WebP, new
# turns it into JPEG.
shift=(-channel R -evaluate add 1.7255% -channel G -evaluate add 0.6667% -channel B -evaluate add 1.2941% +channel)
cwebp -quiet -q 80 "$tmp/coffee-thumb.png" -o webp-shift-to-jpeg.legacy.webp
"$IM" "$tmp/coffee-thumb.png" "${shift[@]}" -quality 85 webp-shift-to-jpeg.new.jpg
"$IM" "$tmp/chelsea.png" -resize 240x160 "$tmp/chelsea-thumb.png"
"$IM" "$tmp/chelsea-thumb.png" "${shift[@]}" "$tmp/chelsea-shift.png"
cwebp -quiet -q 80 "$tmp/chelsea-thumb.png" -o webp-shift.legacy.webp
cwebp -quiet -q 80 "$tmp/chelsea-shift.png" -o webp-shift.new.webp
# Alpha lost: the new service encodes WebP without its alpha.
cwebp -quiet -q 80 "$tmp/cutout.png" -o alpha-lost.legacy.webp
cwebp -quiet -q 80 -noalpha "$tmp/cutout.png" -o alpha-lost.new.webp
# EXIF orientation ignored: a camera JPEG tagged Orientation 6 (RightTop);
# legacy applies it, new does not. The picture is square, so the dimensions
# agree and only the pixels tell.
"$IM" "$tmp/astronaut.png" -quality 92 "$tmp/astro-o6.jpg"
exiftool -q -overwrite_original -n -Orientation=6 "$tmp/astro-o6.jpg"
"$IM" "$tmp/astro-o6.jpg" -auto-orient -resize 256x256 -strip -quality 85 exif-ignored.legacy.jpg
"$IM" "$tmp/astro-o6.jpg" -resize 256x256 -strip -quality 85 exif-ignored.new.jpg
# Another crop: a 160x160 square cut from the centre, and from the east.
"$IM" "$tmp/coffee.png" -resize x160 -gravity center -extent 160x160 -quality 85 crop-centre-east.legacy.jpg
"$IM" "$tmp/coffee.png" -resize x160 -gravity east -extent 160x160 -quality 85 crop-centre-east.new.jpg
# Another picture of the same size.
"$IM" "$tmp/coffee.png" -resize 240x160 -quality 85 other-picture.legacy.jpg
"$IM" "$tmp/chelsea.png" -resize 240x160 -quality 85 other-picture.new.jpg
ls -l
