/**
 * Deterministic records in the shape of a dummyjson-style store API (`/users`, `/products`, `/carts`):
 * camelCase keys, nested `address`, `hair`, `bank`, `company` objects, PII the contracts never map
 * (password, ssn, card number, IBAN), and carts with `userId` and product lines but no date. Served by
 * the local demo API (shared/local/demo-api.ts) and written to samples/store/. Same seed → same records.
 */
import { mulberry32 } from './rainfall';

export type ApiRecord = Record<string, unknown>;

/** The sizes of the public dummyjson API. */
export const STORE_API_SIZES = { users: 208, products: 194, carts: 50 } as const;

export interface StoreApiOptions {
  users?: number;
  products?: number;
  carts?: number;
  seed?: number;
}

export interface StoreApiData {
  users: ApiRecord[];
  products: ApiRecord[];
  carts: ApiRecord[];
}

const FIRST_F = [
  'Emily',
  'Olivia',
  'Sophia',
  'Emma',
  'Ava',
  'Isabella',
  'Mia',
  'Charlotte',
  'Amelia',
  'Evelyn',
];
const FIRST_M = [
  'Michael',
  'James',
  'Alexander',
  'William',
  'Liam',
  'Noah',
  'Ethan',
  'Lucas',
  'Logan',
  'Mason',
];
const LAST = [
  'Johnson',
  'Williams',
  'Brown',
  'Jones',
  'Garcia',
  'Miller',
  'Davis',
  'Rodriguez',
  'Wilson',
  'Taylor',
];
const CITIES: [string, string, string][] = [
  ['Phoenix', 'Arizona', 'AZ'],
  ['Houston', 'Texas', 'TX'],
  ['Denver', 'Colorado', 'CO'],
  ['Seattle', 'Washington', 'WA'],
  ['Columbus', 'Ohio', 'OH'],
  ['San Diego', 'California', 'CA'],
  ['Boston', 'Massachusetts', 'MA'],
];
const HAIR_COLORS = ['Brown', 'Black', 'Blonde', 'Red', 'Gray', 'Green'];
const HAIR_TYPES = ['Straight', 'Wavy', 'Curly', 'Kinky'];
const DEPARTMENTS = ['Engineering', 'Marketing', 'Sales', 'Support', 'Legal', 'Accounting'];
export const STORE_API_CATEGORIES = [
  'beauty',
  'fragrances',
  'furniture',
  'groceries',
  'home-decoration',
  'kitchen-accessories',
  'laptops',
  'mens-shirts',
  'mens-shoes',
  'mobile-accessories',
  'smartphones',
  'sports-accessories',
  'sunglasses',
  'tablets',
  'womens-bags',
  'womens-dresses',
];
const BRANDS = [
  'Essence',
  'Glamour Beauty',
  'Velvet Touch',
  'Apple',
  'Samsung',
  'Dell',
  'Nike',
  'Puma',
  'Annibale Colombo',
];

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
const digits = (rnd: () => number, n: number): string =>
  Array.from({ length: n }, () => String(Math.floor(rnd() * 10))).join('');

function user(id: number, rnd: () => number): ApiRecord {
  const female = rnd() < 0.5;
  const firstName = pick(rnd, female ? FIRST_F : FIRST_M);
  const lastName = pick(rnd, LAST);
  const [city, state, stateCode] = pick(rnd, CITIES);
  const age = 18 + Math.floor(rnd() * 60);
  const birthYear = 2024 - age;
  const birthDate = `${birthYear}-${1 + Math.floor(rnd() * 12)}-${1 + Math.floor(rnd() * 28)}`;
  const username = `${firstName.toLowerCase()}${lastName.slice(0, 1).toLowerCase()}${id}`;
  return {
    id,
    firstName,
    lastName,
    maidenName: rnd() < 0.3 ? pick(rnd, LAST) : '',
    age,
    gender: female ? 'female' : 'male',
    email: `${firstName}.${lastName}${id}@x.dummyjson.com`.toLowerCase(),
    phone: `+1 ${digits(rnd, 3)}-${digits(rnd, 3)}-${digits(rnd, 4)}`,
    username,
    password: `${username}pass${digits(rnd, 3)}`,
    birthDate,
    image: `https://dummyjson.com/icon/${username}/128`,
    bloodGroup: pick(rnd, ['A+', 'A-', 'B+', 'O+', 'O-', 'AB+']),
    height: round(150 + rnd() * 45),
    weight: round(50 + rnd() * 50),
    eyeColor: pick(rnd, ['Green', 'Brown', 'Blue', 'Gray', 'Hazel']),
    hair: { color: pick(rnd, HAIR_COLORS), type: pick(rnd, HAIR_TYPES) },
    ip: `${1 + Math.floor(rnd() * 254)}.${Math.floor(rnd() * 255)}.${Math.floor(rnd() * 255)}.${Math.floor(rnd() * 255)}`,
    address: {
      address: `${100 + Math.floor(rnd() * 9900)} Main Street`,
      city,
      state,
      stateCode,
      postalCode: digits(rnd, 5),
      coordinates: { lat: round(-90 + rnd() * 180, 6), lng: round(-180 + rnd() * 360, 6) },
      country: 'United States',
    },
    macAddress: Array.from({ length: 6 }, () =>
      Math.floor(rnd() * 256)
        .toString(16)
        .padStart(2, '0'),
    ).join(':'),
    university: `University of ${city}`,
    bank: {
      cardExpire: `${String(1 + Math.floor(rnd() * 12)).padStart(2, '0')}/${26 + Math.floor(rnd() * 5)}`,
      cardNumber: digits(rnd, 16),
      cardType: pick(rnd, ['Visa', 'Mastercard', 'Amex']),
      currency: 'USD',
      iban: `DE${digits(rnd, 20)}`,
    },
    company: {
      department: pick(rnd, DEPARTMENTS),
      name: `${pick(rnd, LAST)} ${pick(rnd, ['Inc', 'LLC', 'Group'])}`,
      title: pick(rnd, ['Manager', 'Engineer', 'Analyst', 'Director']),
      address: {
        address: `${100 + Math.floor(rnd() * 9900)} Market Street`,
        city: pick(rnd, CITIES)[0],
        country: 'United States',
      },
    },
    ein: `${digits(rnd, 2)}-${digits(rnd, 7)}`,
    ssn: `${digits(rnd, 3)}-${digits(rnd, 2)}-${digits(rnd, 4)}`,
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36',
    crypto: { coin: 'Bitcoin', wallet: `0x${digits(rnd, 40)}`, network: 'Ethereum (ERC20)' },
    role: rnd() < 0.05 ? 'admin' : rnd() < 0.1 ? 'moderator' : 'user',
  };
}

function product(id: number, rnd: () => number): ApiRecord {
  const category = STORE_API_CATEGORIES[(id - 1) % STORE_API_CATEGORIES.length] as string;
  const expensive = ['laptops', 'smartphones', 'tablets', 'furniture'].includes(category);
  const price = round(1 + rnd() * (expensive ? 1999 : 149));
  const stock = Math.floor(rnd() * 120);
  const title = `${category.replace(/-/g, ' ').replace(/^./, (c) => c.toUpperCase())} item ${id}`;
  return {
    id,
    title,
    description: `A ${category.replace(/-/g, ' ')} product.`,
    category,
    price,
    discountPercentage: round(rnd() * 20),
    rating: round(1 + rnd() * 4),
    stock,
    tags: [category.split('-')[0] as string],
    ...(rnd() < 0.85 ? { brand: pick(rnd, BRANDS) } : {}),
    sku: `SKU-${digits(rnd, 6)}`,
    weight: 1 + Math.floor(rnd() * 9),
    dimensions: { width: round(5 + rnd() * 25), height: round(5 + rnd() * 25), depth: round(5 + rnd() * 25) },
    warrantyInformation: pick(rnd, ['1 month warranty', '1 year warranty', 'No warranty']),
    shippingInformation: pick(rnd, ['Ships in 1 week', 'Ships overnight', 'Ships in 2 weeks']),
    availabilityStatus: stock < 5 ? 'Low Stock' : 'In Stock',
    reviews: Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => ({
      rating: 1 + Math.floor(rnd() * 5),
      comment: pick(rnd, ['Very pleased!', 'Would not recommend!', 'Great value!']),
      date: '2024-05-23T08:56:21.618Z',
      reviewerName: `${pick(rnd, FIRST_F)} ${pick(rnd, LAST)}`,
      reviewerEmail: `reviewer${Math.floor(rnd() * 1000)}@x.dummyjson.com`,
    })),
    returnPolicy: pick(rnd, ['30 days return policy', 'No return policy']),
    minimumOrderQuantity: 1 + Math.floor(rnd() * 20),
    meta: {
      createdAt: '2024-05-23T08:56:21.618Z',
      updatedAt: '2024-05-23T08:56:21.618Z',
      barcode: digits(rnd, 13),
      qrCode: 'https://cdn.dummyjson.com/public/qr-code.png',
    },
    images: [`https://cdn.dummyjson.com/products/images/${category}/${id}/1.png`],
    thumbnail: `https://cdn.dummyjson.com/products/images/${category}/${id}/thumbnail.png`,
  };
}

function cart(id: number, rnd: () => number, products: ApiRecord[], users: number): ApiRecord {
  const n = 1 + Math.floor(rnd() * 5);
  const chosen = new Set<number>();
  while (chosen.size < Math.min(n, products.length)) chosen.add(Math.floor(rnd() * products.length));
  const lines = [...chosen].map((i) => {
    const p = products[i] as ApiRecord;
    const quantity = 1 + Math.floor(rnd() * 5);
    const price = p.price as number;
    const total = round(price * quantity);
    const discountPercentage = p.discountPercentage as number;
    return {
      id: p.id,
      title: p.title,
      price,
      quantity,
      total,
      discountPercentage,
      discountedTotal: round(total * (1 - discountPercentage / 100)),
      thumbnail: p.thumbnail,
    };
  });
  return {
    id,
    products: lines,
    total: round(lines.reduce((s, l) => s + l.total, 0)),
    discountedTotal: round(lines.reduce((s, l) => s + l.discountedTotal, 0)),
    userId: 1 + Math.floor(rnd() * Math.max(users, 1)),
    totalProducts: lines.length,
    totalQuantity: lines.reduce((s, l) => s + l.quantity, 0),
  };
}

/** Users, products and carts; each list has its own random stream, so changing one size keeps the others. */
export function storeApiData(opts: StoreApiOptions = {}): StoreApiData {
  const seed = opts.seed ?? 1;
  const stream = (k: number): (() => number) => mulberry32(seed * 1_000_003 + k);
  const ru = stream(1);
  const rp = stream(2);
  const rc = stream(3);
  const nUsers = opts.users ?? STORE_API_SIZES.users;
  const users = Array.from({ length: nUsers }, (_, i) => user(i + 1, ru));
  const products = Array.from({ length: opts.products ?? STORE_API_SIZES.products }, (_, i) =>
    product(i + 1, rp),
  );
  const carts = Array.from({ length: opts.carts ?? STORE_API_SIZES.carts }, (_, i) =>
    cart(i + 1, rc, products, nUsers),
  );
  return { users, products, carts };
}
