import 'reflect-metadata'; // @peculiar/x509's tsyringe wants it loaded first
import { webcrypto } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { SERVICE_IDENTITY, type ServiceIdentity } from './internal-tls.js';

/**
 * A local certificate authority for the internal hops, made in-process (no openssl, no network): ECDSA P-256,
 * one leaf per service with its SPIFFE-style URI SAN. `npm start` and the test platform use it; production
 * takes certificates from Secrets (cert-manager or the platform's own CA).
 */
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface IssuedCertificate {
  certificatePem: string;
  privateKeyPem: string;
}

export interface LocalCa extends IssuedCertificate {
  /** Issues a leaf for a service identity (client and server auth), valid for `days`. */
  issue(identity: ServiceIdentity, days?: number): Promise<IssuedCertificate>;
}

function serial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return Buffer.from(bytes).toString('hex');
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importCa(certificatePem: string, privateKeyPem: string): Promise<LocalCa> {
  const certificate = new x509.X509Certificate(certificatePem);
  const privateKey = await webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(privateKeyPem),
    ALGORITHM,
    false,
    ['sign'],
  );
  return {
    certificatePem,
    privateKeyPem,
    async issue(identity, days = 30) {
      const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
      const now = Date.now();
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${identity.replace(/^spiffe:\/\/airlock\//, 'airlock-')}`,
        issuer: certificate.subject,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + days * DAY_MS),
        signingAlgorithm: ALGORITHM,
        publicKey: keys.publicKey,
        signingKey: privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
            true,
          ),
          new x509.ExtendedKeyUsageExtension(
            [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
            false,
          ),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identity }], true),
          await x509.AuthorityKeyIdentifierExtension.create(certificate, false),
        ],
      });
      return { certificatePem: leaf.toString('pem'), privateKeyPem: await pkcs8Pem(keys.privateKey) };
    },
  };
}

/** A new self-signed CA, valid for `days`. */
export async function createLocalCa(days = 3650): Promise<LocalCa> {
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=Airlock internal CA',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * DAY_MS),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return importCa(ca.toString('pem'), await pkcs8Pem(keys.privateKey));
}

/** Where one service's files are, as the AIRLOCK_TLS_* variables want them. */
export interface ServiceTlsFiles {
  AIRLOCK_TLS_CA_FILE: string;
  AIRLOCK_TLS_CERT_FILE: string;
  AIRLOCK_TLS_KEY_FILE: string;
}

export type ServiceName = 'gateway' | 'auth-audit' | 'worker';
const IDENTITY_OF: Record<ServiceName, ServiceIdentity> = {
  gateway: SERVICE_IDENTITY.gateway,
  'auth-audit': SERVICE_IDENTITY.authAudit,
  worker: SERVICE_IDENTITY.worker,
};

/** Writes a file readable by its owner only, atomically (a watcher never reads half a certificate). */
async function writePrivate(path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The CA under `<dir>` (created once, kept) and a fresh leaf per service (re-issued on every call, so a
 * restart also rotates). Directory 0700, files 0600. Returns each service's AIRLOCK_TLS_* variables.
 */
export async function ensureLocalPki(
  dir: string,
  services: readonly ServiceName[] = ['gateway', 'auth-audit', 'worker'],
  days = 30,
): Promise<Record<ServiceName, ServiceTlsFiles>> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const caCertFile = join(dir, 'ca.crt');
  const caKeyFile = join(dir, 'ca.key');
  const [existingCert, existingKey] = await Promise.all([
    readIfPresent(caCertFile),
    readIfPresent(caKeyFile),
  ]);
  let ca: LocalCa;
  if (existingCert && existingKey) {
    ca = await importCa(existingCert, existingKey);
  } else {
    ca = await createLocalCa();
    await writePrivate(caKeyFile, ca.privateKeyPem);
    await writePrivate(caCertFile, ca.certificatePem);
  }
  const result = {} as Record<ServiceName, ServiceTlsFiles>;
  for (const service of services) {
    const leaf = await ca.issue(IDENTITY_OF[service], days);
    const files = {
      AIRLOCK_TLS_CA_FILE: caCertFile,
      AIRLOCK_TLS_CERT_FILE: join(dir, `${service}.crt`),
      AIRLOCK_TLS_KEY_FILE: join(dir, `${service}.key`),
    };
    await writePrivate(files.AIRLOCK_TLS_KEY_FILE, leaf.privateKeyPem);
    await writePrivate(files.AIRLOCK_TLS_CERT_FILE, leaf.certificatePem);
    result[service] = files;
  }
  return result;
}

export { writePrivate as writePrivateFile };
