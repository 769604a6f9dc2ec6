/** The smallest orders contract: three required columns and a key (conversion and commit tests). */
export const ORDERS_CONTRACT = {
  dataset: 'orders',
  columns: [
    { name: 'order_id', type: 'int64', required: true },
    { name: 'customer', type: 'string', required: true },
    { name: 'order_date', type: 'date', required: true },
  ],
  primaryKey: ['order_id'],
};
