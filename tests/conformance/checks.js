'use strict';
// Conformance checks: Alibaba's official Node.js clients against a cloud endpoint.
//
//   node checks.js <check> [virtual|path]
//
// The target comes from the CONFORMANCE_TARGET environment variable (JSON, written by
// tests/conformance/test_official_clients.py). Every check prints exactly one JSON line
// {"check", "style", "ok", "verdict", "reason", "seen"} and exits 0 when it passed, 1 when the
// service did not behave as Alibaba Cloud documents, 2 on a usage error. A check passes
// only on evidence a server cannot give without doing the work: the bytes it stored, a
// digest of what it received, or the refusal code for a wrong signature.
//
// Every connection goes to 127.0.0.1: virtual-hosted requests carry the bucket's
// Alibaba Cloud host name in the Host header but are sent to the loopback port, as if
// DNS had resolved that name to the local stand-in.

const crypto = require('crypto');
const dns = require('dns');
const http = require('http');

const OSS = require('ali-oss');
const RPCClient = require('@alicloud/pop-core').RPCClient;
const MNSClient = require('@alicloud/mns');

const LOOPBACK = '127.0.0.1';

class CheckFailed extends Error {}

function expect(condition, reason) {
  if (!condition) {
    throw new CheckFailed(reason);
  }
}

// Resolve every name to the loopback address: no request can leave this machine.
function loopbackLookup(hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  if (options && options.all) {
    callback(null, [{ address: LOOPBACK, family: 4 }]);
  } else {
    callback(null, LOOPBACK, 4);
  }
}
// Defence in depth: nothing in this process may use the system resolver either.
dns.lookup = loopbackLookup;

function loopbackAgent() {
  return new http.Agent({ keepAlive: false, lookup: loopbackLookup });
}

function md5Hex(data) {
  return crypto.createHash('md5').update(data).digest('hex');
}

function uniqueName(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${crypto.randomBytes(4).toString('hex')}`;
}

// OSS -------------------------------------------------------------------------------------

// ali-oss with an IP endpoint sends `Host: <bucket>.oss-<region>.aliyuncs.com` and the key
// alone as the path (virtual-hosted style). Path style needs a host name endpoint and
// `sldEnable`: the path is then /<bucket>/<key> and Host is the endpoint's own.
function ossClient(target, style, secret) {
  const oss = target.oss;
  const options = {
    region: `oss-${oss.region}`,
    accessKeyId: target.accessKeyId,
    accessKeySecret: secret === undefined ? target.accessKeySecret : secret,
    bucket: oss.bucket,
    authorizationV4: true,
    secure: false,
    timeout: 20000,
    agent: loopbackAgent(),
  };
  if (style === 'virtual') {
    options.endpoint = `http://${LOOPBACK}:${oss.port}`;
  } else if (style === 'path') {
    options.endpoint = `http://localhost:${oss.port}`;
    options.sldEnable = true;
  } else {
    throw new Error(`style must be virtual or path (got ${JSON.stringify(style)})`);
  }
  return new OSS(options);
}

function virtualHost(target) {
  return `${target.oss.bucket}.oss-${target.oss.region}.aliyuncs.com`;
}

// A plain HTTP GET, as a browser or curl would send a presigned URL.
function fetchUrl(url, hostHeader, port) {
  const parsed = new URL(url);
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: LOOPBACK,
        port: port,
        method: 'GET',
        path: parsed.pathname + parsed.search,
        headers: { Host: hostHeader },
        agent: false,
        timeout: 20000,
      },
      (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode, body: Buffer.concat(chunks) })
        );
      }
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
    request.end();
  });
}

async function putFresh(client, label) {
  const key = `conformance/${uniqueName(label)}/pkg.bin`;
  const content = crypto.randomBytes(1500);
  const result = await client.put(key, content);
  return { key, content, result };
}

function etagOf(headers) {
  return String((headers && headers.etag) || '').replace(/"/g, '');
}

const checks = {};

checks['oss-put'] = async (target, style) => {
  const { key, content, result } = await putFresh(ossClient(target, style), 'put');
  const status = result.res && result.res.status;
  const etag = etagOf(result.res && result.res.headers);
  const expected = md5Hex(content).toUpperCase();
  expect(status === 200, `PutObject answered ${status}, not 200`);
  expect(etag === expected, `PutObject ETag ${JSON.stringify(etag)} is not the MD5 ${expected}`);
  return { key, etag, md5: expected };
};

checks['oss-get'] = async (target, style) => {
  const client = ossClient(target, style);
  const { key, content } = await putFresh(client, 'get');
  const got = await client.get(key);
  const body = Buffer.from(got.content || '');
  expect(got.res.status === 200, `GetObject answered ${got.res.status}, not 200`);
  expect(
    body.equals(content),
    `GetObject returned ${body.length} bytes (MD5 ${md5Hex(body)}), not the ${content.length} ` +
      `bytes put (MD5 ${md5Hex(content)})`
  );
  return { key, bytes: body.length };
};

checks['oss-head'] = async (target, style) => {
  const client = ossClient(target, style);
  const { key, content } = await putFresh(client, 'head');
  const head = await client.head(key);
  const headers = head.res.headers;
  const length = Number(headers['content-length']);
  const etag = etagOf(headers);
  const expected = md5Hex(content).toUpperCase();
  expect(head.status === 200, `HeadObject answered ${head.status}, not 200`);
  expect(length === content.length, `HeadObject Content-Length ${length}, not ${content.length}`);
  expect(etag === expected, `HeadObject ETag ${JSON.stringify(etag)} is not the MD5 ${expected}`);
  return { key, length, etag };
};

checks['oss-presigned-url'] = async (target, style) => {
  const client = ossClient(target, style);
  const { key, content } = await putFresh(client, 'presigned');
  const url = await client.signatureUrlV4('GET', 300, undefined, key);
  const parsed = new URL(url);
  const hostHeader = style === 'virtual' ? virtualHost(target) : parsed.host;
  expect(
    parsed.searchParams.get('x-oss-signature-version') === 'OSS4-HMAC-SHA256',
    `the presigned URL is not V4: ${url}`
  );
  const good = await fetchUrl(url, hostHeader, target.oss.port);
  expect(good.status === 200, `GET of the presigned URL answered ${good.status}, not 200`);
  expect(
    good.body.equals(content),
    `GET of the presigned URL returned ${good.body.length} bytes, not the ${content.length} put`
  );
  // The same URL with one signature character changed must be refused.
  const signature = parsed.searchParams.get('x-oss-signature');
  const flipped = (signature[0] === '0' ? '1' : '0') + signature.slice(1);
  parsed.searchParams.set('x-oss-signature', flipped);
  const forged = await fetchUrl(parsed.toString(), hostHeader, target.oss.port);
  const code = /<Code>([^<]*)<\/Code>/.exec(forged.body.toString('utf8'));
  expect(
    forged.status === 403 && code && code[1] === 'SignatureDoesNotMatch',
    `a presigned URL with a forged signature answered ${forged.status} ` +
      `${code ? code[1] : forged.body.toString('utf8').slice(0, 80)}, not 403 SignatureDoesNotMatch`
  );
  return { key, host: hostHeader, path: parsed.pathname };
};

checks['oss-wrong-secret'] = async (target, style) => {
  const client = ossClient(target, style, `${target.accessKeySecret}-wrong`);
  const key = `conformance/${uniqueName('forged')}/pkg.bin`;
  try {
    await client.put(key, Buffer.from('must not be stored'));
  } catch (error) {
    expect(
      error.status === 403 && error.code === 'SignatureDoesNotMatch',
      `a wrong secret was refused with ${error.status} ${error.code}, not 403 ` +
        `SignatureDoesNotMatch (${error.message})`
    );
    return { key, status: error.status, code: error.code };
  }
  throw new CheckFailed('PutObject signed with a wrong secret was accepted');
};

checks['oss-list'] = async (target, style) => {
  // ListObjectsV2 under a fresh folder: the two keys put there, each with the MD5 ETag
  // of the bytes sent, and the listing cut short (IsTruncated) at max-keys 1.
  const client = ossClient(target, style);
  const folder = `conformance/${uniqueName('list')}/`;
  const contents = [crypto.randomBytes(700), crypto.randomBytes(900)];
  const keys = [`${folder}a (1).bin`, `${folder}b+2.bin`];
  for (let i = 0; i < keys.length; i += 1) {
    await client.put(keys[i], contents[i]);
  }
  let whole;
  try {
    whole = await client.listV2({ prefix: folder, 'max-keys': 10, 'encoding-type': 'url' });
  } catch (error) {
    // ali-oss parses the answer as a ListBucketResult: anything else is not a listing.
    throw new CheckFailed(`ListObjectsV2 did not answer with a listing: ${error.message}`);
  }
  const names = (whole.objects || []).map((o) => decodeURIComponent(o.name));
  expect(
    JSON.stringify(names) === JSON.stringify(keys),
    `ListObjectsV2 listed ${JSON.stringify(names)}, not ${JSON.stringify(keys)}`
  );
  (whole.objects || []).forEach((o, i) => {
    const etag = String(o.etag || '').replace(/"/g, '');
    expect(
      etag === md5Hex(contents[i]).toUpperCase(),
      `ListObjectsV2 gave ${keys[i]} the ETag ${etag}, not the MD5 of its bytes`
    );
  });
  const cut = await client.listV2({ prefix: folder, 'max-keys': 1 });
  expect(
    (cut.objects || []).length === 1 && cut.isTruncated === true,
    `max-keys 1 listed ${(cut.objects || []).length} object(s), truncated=${cut.isTruncated}`
  );
  return { keys: names };
};

// IoT Platform (RPC API through the POP gateway) ------------------------------------------

function iotClient(target, secret) {
  return new RPCClient({
    accessKeyId: target.accessKeyId,
    accessKeySecret: secret === undefined ? target.accessKeySecret : secret,
    endpoint: target.iot.endpoint,
    apiVersion: '2018-01-20',
    opts: { timeout: 20000 },
  });
}

const BAD_FIRMWARE_NAME = '-starts with a dash!';

checks['iot-refused-parameter'] = async (target) => {
  const params = {
    FirmwareName: BAD_FIRMWARE_NAME,
    DestVersion: '1.0.0',
    FirmwareUrl: target.iot.firmwareUrl,
  };
  let answer;
  try {
    answer = await iotClient(target).request('CreateOTAFirmware', params, { method: 'POST' });
  } catch (error) {
    const data = error.data || {};
    const status = error.entry && error.entry.response && error.entry.response.statusCode;
    expect(
      error.code === 'iot.system.IllegalRequest',
      `a bad FirmwareName was refused with code ${JSON.stringify(error.code)}, not ` +
        `iot.system.IllegalRequest (${error.message})`
    );
    expect(data.Success === false, `the refusal says Success=${JSON.stringify(data.Success)}`);
    expect(
      typeof data.RequestId === 'string' && data.RequestId.length > 0,
      'the refusal carries no RequestId'
    );
    expect(
      typeof data.ErrorMessage === 'string' && data.ErrorMessage.includes('FirmwareName'),
      `the refusal's ErrorMessage does not name FirmwareName: ${JSON.stringify(data.ErrorMessage)}`
    );
    return { status, code: error.code, errorMessage: data.ErrorMessage, name: BAD_FIRMWARE_NAME };
  }
  throw new CheckFailed(
    `CreateOTAFirmware with FirmwareName ${JSON.stringify(BAD_FIRMWARE_NAME)} was accepted: ` +
      JSON.stringify(answer).slice(0, 200)
  );
};

checks['iot-wrong-secret'] = async (target) => {
  const client = iotClient(target, `${target.accessKeySecret}-wrong`);
  let answer;
  try {
    answer = await client.request('ListOTAFirmware', { CurrentPage: 1, PageSize: 10 }, {
      method: 'POST',
    });
  } catch (error) {
    const status = error.entry && error.entry.response && error.entry.response.statusCode;
    expect(
      status === 400 && error.code === 'SignatureDoesNotMatch',
      `a wrong secret was refused with ${status} ${error.code}, not 400 SignatureDoesNotMatch`
    );
    return { status, code: error.code };
  }
  throw new CheckFailed(
    'ListOTAFirmware signed with a wrong secret was accepted: ' +
      JSON.stringify(answer).slice(0, 200)
  );
};

checks['iot-multi-files'] = async (target) => {
  // CreateOTAFirmware with MultiFiles (the SDK's flattened MultiFiles.N.*), then
  // QueryOTAFirmware must report the two files by name and URL.
  const name = uniqueName('mf').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  const client = iotClient(target);
  const created = await client.request(
    'CreateOTAFirmware',
    {
      FirmwareName: name,
      DestVersion: '2.0.0',
      'MultiFiles.1.Name': 'app.bin',
      'MultiFiles.1.Url': target.iot.firmwareUrl,
      'MultiFiles.2.Name': 'boot.img',
      'MultiFiles.2.Url': target.iot.firmwareUrl,
    },
    { method: 'POST' }
  );
  const firmwareId = created.Data && created.Data.FirmwareId;
  expect(created.Success === true && typeof firmwareId === 'string' && firmwareId.length > 0,
    `CreateOTAFirmware with MultiFiles answered ${JSON.stringify(created).slice(0, 200)}`);
  const queried = await client.request('QueryOTAFirmware', { FirmwareId: firmwareId }, {
    method: 'POST',
  });
  const files = ((queried.FirmwareInfo || {}).MultiFiles || []).map((f) => [f.Name, f.Url]);
  const expected = [['app.bin', target.iot.firmwareUrl], ['boot.img', target.iot.firmwareUrl]];
  expect(
    JSON.stringify(files) === JSON.stringify(expected),
    `QueryOTAFirmware reported MultiFiles ${JSON.stringify(files)}, not ${JSON.stringify(expected)}`
  );
  return { firmwareId, name };
};

checks['iot-verify-too-many-devices'] = async (target) => {
  // CreateOTAVerifyJob takes at most 10 TargetDeviceName.N: an eleventh is refused.
  const client = iotClient(target);
  const params = { FirmwareId: target.iot.firmwareId, ProductKey: 'a1Conformance' };
  for (let i = 1; i <= 11; i += 1) {
    params[`TargetDeviceName.${i}`] = `device-${String(i).padStart(2, '0')}`;
  }
  let answer;
  try {
    answer = await client.request('CreateOTAVerifyJob', params, { method: 'POST' });
  } catch (error) {
    const data = error.data || {};
    expect(
      error.code === 'iot.system.IllegalRequest',
      `eleven devices were refused with code ${JSON.stringify(error.code)}, not ` +
        `iot.system.IllegalRequest (${error.message})`
    );
    expect(
      typeof data.ErrorMessage === 'string' && data.ErrorMessage.includes('TargetDeviceName'),
      `the refusal does not name TargetDeviceName: ${JSON.stringify(data.ErrorMessage)}`
    );
    return { code: error.code };
  }
  throw new CheckFailed(
    'CreateOTAVerifyJob with eleven devices was accepted: ' + JSON.stringify(answer).slice(0, 200)
  );
};

// MNS topics ------------------------------------------------------------------------------

function mnsClient(target, secret) {
  return new MNSClient(target.mns.accountId, {
    endpoint: target.mns.endpoint,
    accessKeyId: target.accessKeyId,
    accessKeySecret: secret === undefined ? target.accessKeySecret : secret,
  });
}

checks['mns-publish'] = async (target) => {
  const body = JSON.stringify({ check: 'mns-publish', nonce: uniqueName('msg') });
  const tag = 'conformance';
  const answer = await mnsClient(target).publishMessage(target.mns.topic, {
    MessageBody: body,
    MessageTag: tag,
  });
  const returned = answer.body || {};
  const expected = md5Hex(Buffer.from(body, 'utf8')).toUpperCase();
  expect(answer.code === 201, `PublishMessage answered ${answer.code}, not 201`);
  expect(
    typeof returned.MessageId === 'string' && returned.MessageId.length > 0,
    'PublishMessage returned no MessageId'
  );
  expect(
    returned.MessageBodyMD5 === expected,
    `PublishMessage MessageBodyMD5 ${JSON.stringify(returned.MessageBodyMD5)} is not the ` +
      `MD5 ${expected} of the body sent`
  );
  return { messageId: returned.MessageId, body, tag };
};

checks['mns-wrong-secret'] = async (target) => {
  const client = mnsClient(target, `${target.accessKeySecret}-wrong`);
  let answer;
  try {
    answer = await client.publishMessage(target.mns.topic, { MessageBody: 'forged' });
  } catch (error) {
    expect(
      error.name === 'MNSSignatureDoesNotMatchError' && /failed with 403\./.test(error.message),
      `a wrong secret was refused as ${error.name}: ${error.message}; expected 403 ` +
        'SignatureDoesNotMatch'
    );
    return { name: error.name };
  }
  throw new CheckFailed(
    `PublishMessage signed with a wrong secret was accepted (HTTP ${answer.code})`
  );
};

// Runner ----------------------------------------------------------------------------------

async function main() {
  const [name, style] = process.argv.slice(2);
  const check = checks[name];
  if (!check) {
    process.stdout.write(
      JSON.stringify({ check: name, ok: false, reason: `unknown check; known: ${Object.keys(checks)}` }) + '\n'
    );
    process.exitCode = 2;
    return;
  }
  const target = JSON.parse(process.env.CONFORMANCE_TARGET || 'null');
  if (!target) {
    process.stdout.write(
      JSON.stringify({ check: name, ok: false, reason: 'CONFORMANCE_TARGET is not set' }) + '\n'
    );
    process.exitCode = 2;
    return;
  }
  const result = { check: name, style: style || null, ok: false, verdict: '', reason: '', seen: null };
  try {
    result.seen = await check(target, style);
    result.ok = true;
    result.verdict = 'passed';
  } catch (error) {
    // A client exception is also a failure of the service: it did not answer as documented.
    // `verdict` tells the two apart: "failed" is a check's own judgement, "error" anything else.
    const checked = error instanceof CheckFailed;
    result.verdict = checked ? 'failed' : 'error';
    result.reason = checked ? error.message : `${error.name || 'Error'}: ${error.message}`;
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exitCode = result.ok ? 0 : 1;
}

if (require.main === module) {
  main();
}

module.exports = { checks };
